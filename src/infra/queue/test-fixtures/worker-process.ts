/**
 * A worker (and, with SCHEDULE_EVERY_MS, a scheduler) in its own process, for the tests that
 * kill workers or run several replicas. Prints "ready" once it takes tasks; exits 0 after a
 * graceful close on SIGTERM.
 */
import { Redis } from 'ioredis'
import { createBullMqTaskBroker } from '../bullmq-task-broker.ts'
import { defineSchedule } from '../index.ts'
import { countingTask } from './counting-task.ts'
import { silentLogger } from './redis-test-space.ts'

const { REDIS_URL = '', PREFIX = '', CONCURRENCY = '10', SCHEDULE_EVERY_MS } = process.env
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
const task = countingTask(redis, PREFIX)
const broker = await createBullMqTaskBroker({
  url: REDIS_URL,
  prefix: PREFIX,
  lockDurationMs: 1000,
  stalledIntervalMs: 500,
  logger: silentLogger,
})
const worker = broker.createWorker({ tasks: [task], concurrency: Number(CONCURRENCY) })
await worker.start()
if (SCHEDULE_EVERY_MS) {
  const tick = defineSchedule({
    id: 'tick',
    task,
    payload: { ms: 0 },
    everyMs: Number(SCHEDULE_EVERY_MS),
  })
  await broker.createScheduler([tick]).start()
}
process.stdout.write('ready\n')
process.once('SIGTERM', async () => {
  await broker.close()
  redis.disconnect()
  process.exit(0)
})
