import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { whenReachable } from '../../../test/helpers/services.ts'
import { createBullMqTaskBroker } from './bullmq-task-broker.ts'
import type { TaskStatus } from './index.ts'
import { countingTask } from './test-fixtures/counting-task.ts'
import {
  deleteKeys,
  redisUrl,
  silentLogger,
  uniquePrefix,
} from './test-fixtures/redis-test-space.ts'
import { startWorkerProcess } from './test-fixtures/worker-process-handle.ts'

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

test(
  'a worker killed with SIGKILL mid-way through 1000 tasks: a second worker finishes them all, none lost',
  await whenReachable('redis'),
  async (t) => {
    const prefix = uniquePrefix('stalled')
    const redis = new Redis(redisUrl)
    const broker = await createBullMqTaskBroker({
      url: redisUrl,
      prefix,
      lockDurationMs: 1000,
      stalledIntervalMs: 500,
      logger: silentLogger,
    })
    let child: ChildProcess | undefined
    t.after(async () => {
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await broker.close()
      redis.disconnect()
      await deleteKeys(prefix)
    })
    const task = countingTask(redis, prefix)
    const ids = Array.from({ length: 1000 }, (_, index) => `job-${index}`)
    for (let start = 0; start < ids.length; start += 100)
      await Promise.all(
        ids.slice(start, start + 100).map((id) => broker.submit(task, { ms: 20 }, { id })),
      )

    const concurrency = 20
    child = await startWorkerProcess({ PREFIX: prefix, CONCURRENCY: String(concurrency) })
    await until(async () => (await redis.scard(`${prefix}:done`)) >= 300, 15_000)
    child.kill('SIGKILL')
    await once(child, 'exit')
    const killedAt = Date.now()
    const startedBeforeKill = await redis.hlen(`${prefix}:executions`)
    const doneBeforeKill = await redis.scard(`${prefix}:done`)
    assert.ok(doneBeforeKill < 1000, 'the worker died before finishing')

    const second = broker.createWorker({ tasks: [task], concurrency })
    await second.start()
    let statuses: Array<TaskStatus | undefined> = []
    await until(async () => {
      if ((await redis.scard(`${prefix}:done`)) < 1000) return false
      // A handler's last line runs just before BullMQ records the task as succeeded.
      statuses = await Promise.all(ids.map((id) => broker.status(id)))
      return statuses.every((status) => status?.state === 'succeeded')
    }, 20_000)
    const recoveredMs = Date.now() - killedAt
    const executions = Object.values(await redis.hgetall(`${prefix}:executions`)).map(Number)
    assert.equal(executions.length, 1000)
    const reruns = executions.reduce((sum, runs) => sum + runs, 0) - 1000
    // Jobs the dead worker had taken were taken back (status attempts 2); those whose handler
    // had already begun ran twice (at least once, never more than twice), none more.
    const retaken = statuses.filter((status) => (status as TaskStatus).attempts === 2).length
    assert.ok(retaken >= 1 && retaken <= concurrency, `${retaken} tasks taken back`)
    assert.ok(reruns <= retaken, `${reruns} tasks ran again`)
    assert.ok(executions.every((runs) => runs <= 2))
    t.diagnostic(
      `killed after ${doneBeforeKill} done (${startedBeforeKill} started); ${retaken} taken back, ${reruns} ran again; all 1000 done ${recoveredMs} ms after the kill`,
    )
  },
)
