import assert from 'node:assert/strict'
import { test } from 'node:test'
import { whenReachable } from '../../../test/helpers/services.ts'
import { createBullMqTaskBroker } from './bullmq-task-broker.ts'
import { taskQueueContract } from './task-queue-contract.ts'
import {
  deleteKeys,
  redisUrl,
  silentLogger,
  uniquePrefix,
} from './test-fixtures/redis-test-space.ts'

taskQueueContract(
  'BullMQ',
  async (t, options) => {
    const prefix = uniquePrefix('queue')
    const broker = await createBullMqTaskBroker({
      url: redisUrl,
      prefix,
      logger: silentLogger,
      ...options,
    })
    t.after(async () => {
      await broker.close()
      await deleteKeys(prefix)
    })
    return broker
  },
  await whenReachable('redis'),
)

test('when Redis does not answer, creating the broker fails within the connect timeout', async () => {
  const startedAt = Date.now()
  await assert.rejects(
    createBullMqTaskBroker({
      url: 'redis://127.0.0.1:1/0',
      connectTimeoutMs: 300,
      logger: silentLogger,
    }),
    /did not answer within 300 ms/,
  )
  assert.ok(Date.now() - startedAt < 2000)
})
