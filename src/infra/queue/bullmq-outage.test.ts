import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import {
  cleanupStack,
  type PrivateServer,
  startPrivateRedis,
} from '../../../test/faults/private-servers.ts'
import { AppError } from '../../shared/errors.ts'
import {
  createBullMqTaskBroker,
  PRODUCER_COMMAND_TIMEOUT_MS,
  QUEUE_UNAVAILABLE,
} from './bullmq-task-broker.ts'
import { defineTask } from './task.ts'
import type { TaskBroker } from './task-queue.ts'
import { silentLogger } from './test-fixtures/redis-test-space.ts'

const sum = defineTask({
  name: 'tests.sum',
  handler: (numbers: number[]) => numbers.reduce((total, n) => total + n, 0),
})

/** Submits one task; resolves to how long it took to fail, or throws if it succeeded. */
async function failsAs(broker: TaskBroker, code: string): Promise<number> {
  const startedAt = performance.now()
  await assert.rejects(
    broker.submit(sum, [1, 2]),
    (error: unknown) =>
      error instanceof AppError && error.kind === 'unavailable' && error.code === code,
  )
  return performance.now() - startedAt
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

// A private redis-server of the test's own: the shared one must never be paused or stopped.
const needsRedisServer =
  spawnSync('redis-server', ['--version']).status === 0
    ? { skip: false }
    : { skip: 'redis-server is not installed' }

test(
  'the broker while Redis is paused, stopped and back: 503 fast, then works, nothing lost',
  needsRedisServer,
  async (t) => {
    const cleanup = cleanupStack(t)
    const redis: PrivateServer = await startPrivateRedis(cleanup)
    const broker = await createBullMqTaskBroker({
      url: redis.url,
      prefix: 'outage',
      logger: silentLogger,
    })
    cleanup.after(() => broker.close())
    const before = await Promise.all(
      Array.from({ length: 20 }, (_, index) => broker.submit(sum, [index, 1])),
    )

    // Paused: the first submit waits out the command timeout, the ones after fail at once.
    redis.pause()
    const firstMs = await failsAs(broker, QUEUE_UNAVAILABLE)
    assert.ok(firstMs < PRODUCER_COMMAND_TIMEOUT_MS + 1000, `first failure after ${firstMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const nextMs = await failsAs(broker, QUEUE_UNAVAILABLE)
    assert.ok(nextMs < 200, `next failure after ${nextMs} ms`)
    await assert.rejects(broker.status(before[0]?.id ?? ''), (error: unknown) => {
      return error instanceof AppError && error.code === QUEUE_UNAVAILABLE
    })

    // Shut down: refused at once.
    await redis.stop()
    const downMs = await failsAs(broker, QUEUE_UNAVAILABLE)
    assert.ok(downMs < 200, `failure while down after ${downMs} ms`)

    // Back: the same broker submits again within seconds, and every task from before runs.
    await redis.start()
    const backAt = performance.now()
    let after: { id: string } | undefined
    await until(
      'submit works again',
      async () => {
        after = await broker.submit(sum, [40, 2])
        return true
      },
      5000,
    )
    assert.ok(performance.now() - backAt < 5000)
    const worker = broker.createWorker({ tasks: [sum], concurrency: 5 })
    cleanup.after(() => worker.close())
    await worker.start()
    const ids = [...before, after].map((handle) => handle?.id ?? '')
    await until(
      'every task succeeded',
      async () => {
        const statuses = await Promise.all(ids.map((id) => broker.status(id)))
        return statuses.every((status) => status?.state === 'succeeded')
      },
      15_000,
    )
  },
)

test(
  'a task that meets a database outage waits for it without using up its attempts',
  needsRedisServer,
  async (t) => {
    const cleanup = cleanupStack(t)
    const redis = await startPrivateRedis(cleanup)
    const broker = await createBullMqTaskBroker({
      url: redis.url,
      prefix: 'db-outage',
      logger: silentLogger,
    })
    cleanup.after(() => broker.close())
    let runs = 0
    const flaky = defineTask({
      name: 'tests.flaky',
      handler: () => {
        runs++
        if (runs <= 3)
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
            code: 'ECONNREFUSED',
          })
        return 'done'
      },
    })
    const worker = broker.createWorker({ tasks: [flaky], concurrency: 1 })
    cleanup.after(() => worker.close())
    await worker.start()
    const handle = await broker.submit(flaky, null, { attempts: 1 })
    await until(
      'the task succeeded',
      async () => (await broker.status(handle))?.state === 'succeeded',
      15_000,
    )
    assert.equal(runs, 4)
    assert.equal((await broker.status(handle))?.result, 'done')
  },
)
