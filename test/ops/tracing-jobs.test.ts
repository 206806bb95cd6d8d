import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildLoggedApp } from './ops-helpers.ts'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`

test('a job enqueued by a traced request logs the same trace id', async (t) => {
  const { baseUrl, lines } = await buildLoggedApp(t, { LOG_LEVEL: 'debug', BCRYPT_COST: '4' })
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
  const credentials = { username: 'tracer', password: 'tracer-password' }
  assert.equal((await post('/api/auth/register', credentials)).status, 201)
  const { access_token: token } = (await (await post('/api/auth/login', credentials)).json()) as {
    access_token: string
  }

  const submitted = await post(
    '/api/tasks/number-sum',
    { numbers: [1, 2, 3] },
    { authorization: `Bearer ${token}`, traceparent: TRACEPARENT, 'x-request-id': 'req-job-1' },
  )
  assert.equal(submitted.status, 202)
  const { task_id: taskId } = (await submitted.json()) as { task_id: string }

  let state = ''
  for (let i = 0; i < 100 && state !== 'succeeded'; i++) {
    const status = await fetch(`${baseUrl}/api/tasks/${taskId}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    state = ((await status.json()) as { state: string }).state
    if (state !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.equal(state, 'succeeded')

  const run = lines.find((line) => line.msg === 'task run' && line.task_id === taskId)
  assert.ok(
    run,
    `the job logged its run: ${JSON.stringify(lines.filter((line) => line.msg === 'task run'))}`,
  )
  assert.equal(run.trace_id, TRACE_ID, 'the job continues the request trace')
  assert.equal(run.req_id, 'req-job-1')
  assert.notEqual(run.span_id, '00f067aa0ba902b7', 'the job is a span of its own')
})
