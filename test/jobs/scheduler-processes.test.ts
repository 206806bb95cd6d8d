import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createBullMqTaskBroker } from '../../src/infra/queue/bullmq-task-broker.ts'
import type { TaskStatus } from '../../src/infra/queue/index.ts'
import { scheduleTable, TEST_SCHEDULE_ID } from '../../src/jobs/index.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { runCli } from '../helpers/process.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import { deleteRedisKeys, startCommand, terminate, uniqueAppName } from '../orders/order-helpers.ts'

const WINDOW_MS = 10_000
const silent = { info() {}, warn() {}, error() {} }

test(
  'three scheduler processes and a 1-second test schedule over 10 s: each firing runs exactly once',
  await whenReachable('redis'),
  async (t) => {
    const appName = uniqueAppName('sched')
    const env = {
      APP_NAME: appName,
      REDIS_URL: serviceUrls.redis,
      DATABASE_URL: await createTestDatabase(t, 'sqlite'),
      SCHEDULE_TEST_INTERVAL_MS: '1000',
    }
    const launchedAt = Date.now()
    // Schedules need workers to run their firings (and to create each next one): two of them,
    // logging each task run (debug) so the test sees which process ran which firing.
    const processes = await Promise.all([
      startCommand(t, 'scheduler', env),
      startCommand(t, 'scheduler', env),
      startCommand(t, 'scheduler', env),
      startCommand(t, 'worker', { ...env, LOG_LEVEL: 'debug', WORKER_CONCURRENCY: '2' }),
      startCommand(t, 'worker', { ...env, LOG_LEVEL: 'debug', WORKER_CONCURRENCY: '2' }),
    ])
    const broker = await createBullMqTaskBroker({
      url: serviceUrls.redis,
      prefix: appName,
      logger: silent,
    })
    t.after(() => broker.close())
    t.after(() => deleteRedisKeys(appName))
    const startedAt = Date.now()
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS))

    const listed = await broker
      .createScheduler(scheduleTable({ APP_ENV: 'test', SCHEDULE_TEST_INTERVAL_MS: 1000 }))
      .list()
    assert.deepEqual(
      listed.map((schedule) => [schedule.id, schedule.nextRunAt instanceof Date]),
      [
        ['number_sum', true],
        [TEST_SCHEDULE_ID, true],
      ],
      'one job scheduler per schedule, however many processes registered it',
    )
    for (const run of processes) assert.equal(await terminate(run), 0, run.output())
    const elapsedMs = Date.now() - startedAt

    const firingPattern = new RegExp(
      `"task_id":"repeat:${TEST_SCHEDULE_ID}:(\\d+)".*"msg":"task run"`,
      'g',
    )
    const runs = new Map<number, number>()
    const workers = processes.slice(3)
    const byWorker = workers.map((worker) => {
      const times = [...worker.output().matchAll(firingPattern)].map((match) => Number(match[1]))
      for (const at of times) runs.set(at, (runs.get(at) ?? 0) + 1)
      return times.length
    })
    const firings = [...runs.keys()].sort((a, b) => a - b)
    for (const [at, count] of runs) assert.equal(count, 1, `the firing at ${at} ran ${count} times`)
    // About one per second; BullMQ skips (never doubles) a firing whose time passed while no
    // worker was free, so a loaded machine may show a gap: counted, not failed.
    const endedAt = Date.now()
    const mostFirings = Math.ceil((endedAt - launchedAt) / 1000)
    assert.ok(
      firings.length >= 6 && firings.length <= mostFirings,
      `${firings.length} firings, at most ${mostFirings}`,
    )
    assert.ok(firings.every((at) => at >= launchedAt && at <= endedAt))
    assert.ok(
      firings.every((at) => at % 1000 === 0),
      'on whole seconds',
    )
    const statuses = await Promise.all(
      firings.map((at) => broker.status(`repeat:${TEST_SCHEDULE_ID}:${at}`)),
    )
    assert.ok(
      statuses.every(
        (status: TaskStatus | undefined) =>
          status?.state === 'succeeded' && status.attempts === 1 && status.result === 55,
      ),
      'each firing is one job, run once, summing 1..10',
    )
    const gaps = firings.filter(
      (at, index) => index > 0 && at - (firings[index - 1] ?? at) !== 1000,
    )
    t.diagnostic(
      `${firings.length} firings in ${elapsedMs} ms from 3 schedulers, each run once (worker split ${byWorker.join(' + ')}); ${gaps.length} gaps`,
    )
  },
)

test('worker and scheduler refuse embedded mode (no REDIS_URL) with one line and exit 2', async (t) => {
  const databaseUrl = await createTestDatabase(t, 'sqlite')
  for (const command of ['worker', 'scheduler']) {
    const run = runCli([command], { APP_ENV: 'test', DATABASE_URL: databaseUrl })
    assert.equal(await run.exited, 2)
    const lines = run.output().trim().split('\n')
    assert.equal(lines.length, 1, run.output())
    assert.match(
      lines[0] ?? '',
      new RegExp(`^config error: the ${command} command needs REDIS_URL`),
    )
  }
})

test('the test schedule is refused in prod', () => {
  assert.throws(
    () => scheduleTable({ APP_ENV: 'prod', SCHEDULE_TEST_INTERVAL_MS: 1000 }),
    /SCHEDULE_TEST_INTERVAL_MS is for tests only/,
  )
  assert.deepEqual(
    scheduleTable({ APP_ENV: 'prod', SCHEDULE_TEST_INTERVAL_MS: undefined }).map((s) => s.id),
    ['number_sum'],
  )
})
