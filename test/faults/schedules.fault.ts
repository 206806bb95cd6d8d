import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createBullMqTaskBroker } from '../../src/infra/queue/bullmq-task-broker.ts'
import type { TaskStatus } from '../../src/infra/queue/index.ts'
import { TEST_SCHEDULE_ID } from '../../src/jobs/index.ts'
import { createTestDatabase } from '../helpers/db.ts'
import type { RunningProcess } from '../helpers/process.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import { deleteRedisKeys, startCommand, uniqueAppName } from '../orders/order-helpers.ts'
import { expectFigure } from './figures.ts'

/*
 * Item 14: three scheduler processes register the same 300-ms test schedule; two workers run its
 * ticks. Midway one scheduler is SIGKILLed and a new one started (it registers the schedule
 * again). Every tick must have run exactly once: one `task run` in the workers' logs for each
 * firing id, each firing a job that succeeded on its first attempt, no firing id twice.
 */

const TICKS = 100
const EVERY_MS = 300
const silent = { info() {}, warn() {}, error() {} }

test('schedules: 100 ticks with three scheduler processes, one SIGKILLed and replaced: each ran once', {
  ...(await whenReachable('redis')),
  timeout: 180_000,
}, async (t) => {
  const appName = uniqueAppName('ticks')
  const env = {
    APP_NAME: appName,
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: await createTestDatabase(t, 'sqlite'),
    SCHEDULE_TEST_INTERVAL_MS: String(EVERY_MS),
  }
  const launchedAt = Date.now()
  // Workers log each task run at debug: the test reads which firing ran where, and how often.
  const workerEnv = { ...env, LOG_LEVEL: 'debug', WORKER_CONCURRENCY: '4' }
  const workers = await Promise.all([
    startCommand(t, 'worker', workerEnv),
    startCommand(t, 'worker', workerEnv),
  ])
  const schedulers: RunningProcess[] = await Promise.all([
    startCommand(t, 'scheduler', env),
    startCommand(t, 'scheduler', env),
    startCommand(t, 'scheduler', env),
  ])
  const broker = await createBullMqTaskBroker({
    url: serviceUrls.redis,
    prefix: appName,
    logger: silent,
  })
  t.after(() => broker.close())
  t.after(() => deleteRedisKeys(appName))

  const firingPattern = new RegExp(
    `"task_id":"repeat:${TEST_SCHEDULE_ID}:(\\d+)"[^\\n]*"msg":"task run"`,
    'g',
  )
  const runsOf = () => {
    const runs = new Map<number, number>()
    for (const worker of workers) {
      for (const match of worker.output().matchAll(firingPattern)) {
        const at = Number(match[1])
        runs.set(at, (runs.get(at) ?? 0) + 1)
      }
    }
    return runs
  }

  let replacedAt: number | undefined
  const deadline = Date.now() + 120_000
  while (runsOf().size < TICKS && Date.now() < deadline) {
    if (replacedAt === undefined && runsOf().size >= TICKS / 2) {
      const killed = schedulers[0] as RunningProcess
      killed.child.kill('SIGKILL')
      await killed.exited
      replacedAt = Date.now()
      schedulers[0] = await startCommand(t, 'scheduler', env)
    }
    await sleep(100)
  }
  // One interval more: a tick that would run twice would show by now.
  await sleep(2 * EVERY_MS)

  const runs = runsOf()
  const firings = [...runs.keys()].sort((a, b) => a - b).slice(0, TICKS)
  const twice = firings.filter((at) => (runs.get(at) ?? 0) > 1)
  const statuses = await Promise.all(
    firings.map((at) => broker.status(`repeat:${TEST_SCHEDULE_ID}:${at}`)),
  )
  const onceEach = statuses.filter(
    (status: TaskStatus | undefined) =>
      status?.state === 'succeeded' && status.attempts === 1 && status.result === 55,
  ).length
  const offGrid = firings.filter((at) => at % EVERY_MS !== 0 || at < launchedAt).length
  // BullMQ skips (never doubles) a tick whose time passed while no worker took the previous
  // one: counted for the record; a skipped tick has no job and no run.
  const skipped = firings.reduce(
    (total, at, index) =>
      index === 0 ? 0 : total + ((at - (firings[index - 1] as number)) / EVERY_MS - 1),
    0,
  )
  const spanMs = (firings.at(-1) ?? 0) - (firings[0] ?? 0)
  const afterReplacement = firings.filter((at) => replacedAt !== undefined && at > replacedAt)
  t.diagnostic(
    `${firings.length} ticks over ${spanMs} ms; ${afterReplacement.length} after the replacement ` +
      `scheduler started; ${skipped} slots skipped; runs per worker ` +
      workers.map((worker) => [...worker.output().matchAll(firingPattern)].length).join(' + '),
  )
  expectFigure(t, {
    item: 14,
    name: `${TICKS} ticks of a ${EVERY_MS}-ms schedule, 3 scheduler processes (one SIGKILLed and replaced midway), 2 workers`,
    measured:
      `${firings.length} ticks ran; ${onceEach} exactly once (one job, first attempt), ` +
      `${twice.length} more than once, ${offGrid} off their slot; ${skipped} slots skipped`,
    pass: `${TICKS} ticks, each exactly once, none twice`,
    ok:
      firings.length === TICKS &&
      onceEach === TICKS &&
      twice.length === 0 &&
      offGrid === 0 &&
      afterReplacement.length > 0,
  })

  for (const run of [...schedulers, ...workers]) run.child.kill('SIGTERM')
  await Promise.all([...schedulers, ...workers].map((run) => run.exited))
})
