import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { whenReachable } from '../../../test/helpers/services.ts'
import { createBullMqTaskBroker } from './bullmq-task-broker.ts'
import { defineSchedule, parseCron } from './index.ts'
import { countingTask } from './test-fixtures/counting-task.ts'
import {
  deleteKeys,
  redisUrl,
  silentLogger,
  uniquePrefix,
} from './test-fixtures/redis-test-space.ts'
import { startWorkerProcess } from './test-fixtures/worker-process-handle.ts'

const redisOptions = await whenReachable('redis')

test(
  'three scheduler processes with a 1 s schedule: each firing runs exactly once',
  redisOptions,
  async (t) => {
    const prefix = uniquePrefix('sched')
    const redis = new Redis(redisUrl)
    const replicas: ChildProcess[] = []
    t.after(async () => {
      for (const child of replicas)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      redis.disconnect()
      await deleteKeys(prefix)
    })
    const env = { PREFIX: prefix, CONCURRENCY: '2', SCHEDULE_EVERY_MS: '1000' }
    replicas.push(...(await Promise.all([1, 2, 3].map(() => startWorkerProcess(env)))))
    const startedAt = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 6500))
    await Promise.all(
      replicas.map(async (child) => {
        child.kill('SIGTERM')
        const [code] = await once(child, 'exit')
        assert.equal(code, 0)
      }),
    )
    const elapsedMs = Date.now() - startedAt

    const executions = await redis.hgetall(`${prefix}:executions`)
    const firings = Object.keys(executions)
      .map((id) => {
        const match = /^repeat:tick:(\d+)$/.exec(id)
        assert.ok(match, `unexpected task id ${id}`)
        return Number(match[1])
      })
      .sort((a, b) => a - b)
    for (const [id, runs] of Object.entries(executions))
      assert.equal(runs, '1', `${id} ran ${runs} times`)
    // Firings fall on whole seconds. BullMQ skips (never repeats) a firing whose time passed
    // while no worker was free, so a loaded machine may show a gap: counted, not failed.
    assert.ok(firings.length >= 4 && firings.length <= 8, `${firings.length} firings`)
    assert.ok(firings.every((at) => at % 1000 === 0))
    const gaps = firings.filter(
      (at, index) => index > 0 && at - (firings[index - 1] as number) !== 1000,
    )
    const runs = await redis.lrange(`${prefix}:runs`, 0, -1)
    const pids = new Set(runs.map((run) => run.split('|')[1]))
    t.diagnostic(
      `${firings.length} firings in ${elapsedMs} ms, each run once, by ${pids.size} of 3 processes; ${gaps.length} gaps`,
    )
  },
)

test(
  'list() shows each schedule with its next run; undeclared schedules are removed',
  redisOptions,
  async (t) => {
    const prefix = uniquePrefix('sched-list')
    const redis = new Redis(redisUrl)
    const broker = await createBullMqTaskBroker({ url: redisUrl, prefix, logger: silentLogger })
    t.after(async () => {
      await broker.close()
      redis.disconnect()
      await deleteKeys(prefix)
    })
    const task = countingTask(redis, prefix)
    const quarterly = defineSchedule({
      id: 'quarterly',
      task,
      payload: { ms: 0 },
      everyMs: 15 * 60_000,
    })
    const nightly = defineSchedule({ id: 'nightly', task, payload: { ms: 0 }, cron: '30 3 * * *' })
    const old = defineSchedule({ id: 'old', task, payload: { ms: 0 }, everyMs: 60_000 })

    const before = await broker.createScheduler([quarterly, nightly]).list()
    assert.deepEqual(
      before.map((info) => info.nextRunAt),
      [undefined, undefined],
      'nothing is registered before start',
    )
    await broker.createScheduler([old]).start()
    const scheduler = broker.createScheduler([quarterly, nightly])
    const now = Date.now()
    await scheduler.start()
    await scheduler.start()
    const listed = await scheduler.list()
    assert.deepEqual(
      listed.map(({ nextRunAt, ...rest }) => rest),
      [
        { id: 'quarterly', task: 'test.count', everyMs: 900_000 },
        { id: 'nightly', task: 'test.count', cron: '30 3 * * *' },
      ],
    )
    const quarter = 15 * 60_000
    assert.equal(listed[0]?.nextRunAt?.getTime(), Math.floor(now / quarter) * quarter + quarter)
    assert.equal(
      listed[1]?.nextRunAt?.getTime(),
      parseCron('30 3 * * *').next(new Date(now))?.getTime(),
      'BullMQ and our cron agree',
    )
    assert.equal(await redis.exists(`${prefix}:tasks:repeat:old`), 0, 'the old schedule is gone')
  },
)
