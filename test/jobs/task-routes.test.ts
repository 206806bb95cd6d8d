import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { describe, test } from 'node:test'
import { buildTestApp } from '../helpers/app.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import {
  client,
  deleteRedisKeys,
  signIn,
  TEST_ENV,
  uniqueAppName,
  waitFor,
} from '../orders/order-helpers.ts'

interface TaskStatus {
  id: string
  state: string
  result?: unknown
  error?: string
}

/**
 * The app in one mode: embedded (the in-process runner inside serve), or distributed (BullMQ on
 * the shared Redis, with a worker started the way the worker command starts it).
 */
async function appIn(t: TestContext, mode: 'embedded' | 'distributed') {
  if (mode === 'embedded') return buildTestApp(t, TEST_ENV)
  const appName = uniqueAppName('tasks')
  const app = await buildTestApp(t, {
    ...TEST_ENV,
    APP_NAME: appName,
    REDIS_URL: serviceUrls.redis,
  })
  const worker = await app.container.background.startWorker()
  await app.container.background.scheduler.start()
  t.after(() => worker.close())
  t.after(() => deleteRedisKeys(appName))
  return app
}

const redis = await whenReachable('redis')

for (const mode of ['embedded', 'distributed'] as const) {
  describe(`task routes in ${mode} mode`, mode === 'distributed' ? redis : {}, () => {
    test('number-sum answers 202 with a task id; its status turns succeeded with the sum', async (t) => {
      const { baseUrl } = await appIn(t, mode)
      const call = client(baseUrl)
      const token = await signIn(baseUrl)
      const numbers = Array.from({ length: 10_000 }, (_, index) => index + 1)
      const submitted = await call<{ task_id: string }>('POST', '/api/tasks/number-sum', {
        token,
        body: { numbers },
      })
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body))
      assert.deepEqual(Object.keys(submitted.body), ['task_id'])
      const status = await settled(call, token, submitted.body.task_id)
      assert.deepEqual(status, {
        id: submitted.body.task_id,
        state: 'succeeded',
        result: 50_005_000,
      })
    })

    test('workflows: a chain feeds each result on, a group collects in order, a chord calls back', async (t) => {
      const { baseUrl } = await appIn(t, mode)
      const call = client(baseUrl)
      const token = await signIn(baseUrl)
      const run = async (body: unknown) => {
        const submitted = await call<{ task_id: string }>('POST', '/api/tasks/workflow', {
          token,
          body,
        })
        assert.equal(submitted.status, 202, JSON.stringify(submitted.body))
        return settled(call, token, submitted.body.task_id)
      }
      const sum = (payload: number[]) => ({ task: 'tasks.number-sum', payload })
      const square = (payload: number) => ({ task: 'tasks.number-square', payload })

      const chained = await run({
        kind: 'chain',
        first: sum([1, 2]),
        steps: ['tasks.number-square', 'tasks.number-square'],
      })
      assert.equal(chained.state, 'succeeded')
      assert.equal(chained.result, 81)
      const grouped = await run({ kind: 'group', calls: [sum([1, 2]), square(4), sum([5])] })
      assert.deepEqual(grouped.result, [3, 16, 5])
      const chorded = await run({
        kind: 'chord',
        calls: [sum([1, 2]), square(3), sum([4])],
        callback: 'tasks.number-sum',
      })
      assert.equal(chorded.result, 16)
    })

    test('bad input answers 422; a task of another user or none answers 404', async (t) => {
      const { baseUrl } = await appIn(t, mode)
      const call = client(baseUrl)
      const token = await signIn(baseUrl)
      const other = await signIn(baseUrl)
      const bad: Array<[string, unknown]> = [
        ['/api/tasks/number-sum', { numbers: [] }],
        ['/api/tasks/number-sum', { numbers: Array.from({ length: 10_001 }, () => 1) }],
        ['/api/tasks/number-sum', { numbers: ['a'] }],
        ['/api/tasks/number-sum', {}],
        ['/api/tasks/workflow', { kind: 'loop', calls: [] }],
        ['/api/tasks/workflow', { kind: 'group', calls: [] }],
        [
          '/api/tasks/workflow',
          {
            kind: 'chain',
            first: { task: 'tasks.number-sum', payload: [1] },
            steps: ['tasks.number-sum'],
          },
        ],
        [
          '/api/tasks/workflow',
          { kind: 'chord', calls: [{ task: 'x.y', payload: 1 }], callback: 'tasks.number-sum' },
        ],
        [
          '/api/tasks/workflow',
          {
            kind: 'chord',
            calls: [{ task: 'tasks.number-square', payload: 2 }],
            callback: 'tasks.number-square',
          },
        ],
      ]
      for (const [path, body] of bad) {
        const response = await call('POST', path, { token, body })
        assert.equal(response.status, 422, `${path} ${JSON.stringify(body).slice(0, 80)}`)
        assert.ok(Array.isArray(response.body.detail))
      }
      assert.equal(
        (await call('POST', '/api/tasks/number-sum', { body: { numbers: [1] } })).status,
        401,
      )

      const mine = await call<{ task_id: string }>('POST', '/api/tasks/number-sum', {
        token,
        body: { numbers: [1] },
      })
      const theirs = await call('GET', `/api/tasks/${mine.body.task_id}`, { token: other })
      assert.equal(theirs.status, 404)
      assert.deepEqual(theirs.body, { detail: 'Task not found', code: 'TASKS_NOT_FOUND' })
      assert.equal((await call('GET', '/api/tasks/no-such-task', { token })).status, 404)
      assert.equal((await call('GET', '/api/tasks/bad:id', { token })).status, 422)
      assert.equal((await call('GET', `/api/tasks/${mine.body.task_id}`)).status, 401)
    })

    test('GET /api/schedules lists number_sum every 15 minutes with its next run', async (t) => {
      const { baseUrl } = await appIn(t, mode)
      const call = client(baseUrl)
      const token = await signIn(baseUrl)
      const listed = await call<{
        schedules: Array<{ id: string; task: string; every_ms: number; next_run_at: string }>
      }>('GET', '/api/schedules', { token })
      assert.equal(listed.status, 200)
      const [numberSum, ...others] = listed.body.schedules
      assert.deepEqual(others, [])
      assert.equal(numberSum?.id, 'number_sum')
      assert.equal(numberSum?.task, 'tasks.number-sum')
      assert.equal(numberSum?.every_ms, 900_000)
      const quarter = 900_000
      const next = Date.parse(numberSum?.next_run_at ?? '')
      assert.equal(next % quarter, 0, 'on a quarter hour')
      assert.ok(next > Date.now() - 1000 && next <= Date.now() + quarter)
      assert.equal((await call('GET', '/api/schedules')).status, 401)
    })
  })
}

async function settled(
  call: ReturnType<typeof client>,
  token: string,
  taskId: string,
): Promise<TaskStatus> {
  return waitFor(`task ${taskId} finished`, async () => {
    const status = await call<TaskStatus>('GET', `/api/tasks/${taskId}`, { token })
    assert.equal(status.status, 200, JSON.stringify(status.body))
    return status.body.state === 'succeeded' || status.body.state === 'failed'
      ? status.body
      : undefined
  })
}

test('the OpenAPI document lists the task and schedule routes with their answers', async (t) => {
  const { baseUrl } = await buildTestApp(t, TEST_ENV)
  const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
  }
  const answers = (path: string, method: string) =>
    Object.keys(doc.paths[path]?.[method]?.responses ?? {}).sort()
  assert.deepEqual(answers('/api/tasks/number-sum', 'post'), ['202', '401', '422'])
  assert.deepEqual(answers('/api/tasks/workflow', 'post'), ['202', '401', '422'])
  assert.deepEqual(answers('/api/tasks/{task_id}', 'get'), ['200', '401', '404', '422'])
  assert.deepEqual(answers('/api/schedules', 'get'), ['200', '401'])
})
