import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { createRedis } from '../redis/index.ts'
import { deleteKeysUnder } from '../redis/redis-testing.ts'
import { createRedisPubSub } from './redis-pubsub.ts'

const silent = pino({ level: 'silent' })

test(
  'after the subscriber connection is cut, what was published meanwhile is delivered from the history: once, in order',
  await whenReachable('redis'),
  async (t) => {
    const prefix = `t-gap-${randomBytes(6).toString('hex')}`
    const publisher = await createRedis(serviceUrls.redis, silent)
    const subscriber = await createRedis(serviceUrls.redis, silent)
    const pubsub = createRedisPubSub({
      publisher: publisher.client,
      subscriber: subscriber.client,
      prefix,
    })
    t.after(async () => {
      await pubsub.close()
      await deleteKeysUnder(publisher.client, prefix)
      await subscriber.close()
      await publisher.close()
    })
    // Its own connection id, asked before SUBSCRIBE (a subscribed connection answers nothing else).
    const subscriberId = Number(await subscriber.client.client('ID'))
    const got: string[] = []
    await pubsub.subscribe('room', (message) => got.push(message.data))
    await pubsub.publish('room', 'before')
    await waitUntil(() => got.length === 1)

    // Only this test's own connection is cut: the shared server and its other clients go on.
    await publisher.client.client('KILL', 'ID', String(subscriberId))
    await waitUntil(() => subscriber.client.status !== 'ready')
    for (const data of ['while-away-1', 'while-away-2', 'while-away-3'])
      await pubsub.publish('room', data)
    await waitUntil(() => subscriber.client.status === 'ready', 10_000)
    await waitUntil(() => got.length >= 4, 10_000)
    await pubsub.publish('room', 'after')
    await waitUntil(() => got.length >= 5)
    await sleep(100)
    assert.deepEqual(got, ['before', 'while-away-1', 'while-away-2', 'while-away-3', 'after'])
  },
)

async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`)
    await sleep(10)
  }
}
