import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { createRedis } from '../redis/index.ts'
import { deleteKeysUnder } from '../redis/redis-testing.ts'
import { createMemoryPubSub } from './memory-pubsub.ts'
import { compareEventIds, type PubSub, type PubSubMessage } from './pubsub.ts'
import { createRedisPubSub } from './redis-pubsub.ts'

interface MakeOptions {
  prefix?: string
  historyLimit?: number
  historyTtlSeconds?: number
  onHandlerError?: (error: unknown, channel: string) => void
}

interface Subject {
  pubsub: PubSub
  prefix: string
  /** Lets `ms` pass for the history: moves the fake clock (memory) or waits (Redis). */
  advance(ms: number): Promise<void>
}

const redisAvailability = await whenReachable('redis')
const silent = pino({ level: 'silent' })
const uniquePrefix = () => `t-ps-${randomBytes(6).toString('hex')}`

const implementations: Array<{
  name: string
  skip: string | false
  make(t: TestContext, options?: MakeOptions): Promise<Subject>
}> = [
  {
    name: 'memory',
    skip: false,
    async make(t, options = {}) {
      let now = Date.now()
      const pubsub = createMemoryPubSub({ ...options, clock: { now: () => now } })
      t.after(() => pubsub.close())
      return {
        pubsub,
        prefix: options.prefix ?? uniquePrefix(),
        advance: async (ms) => {
          now += ms
        },
      }
    },
  },
  {
    name: 'redis',
    skip: redisAvailability.skip,
    async make(t, options = {}) {
      const prefix = options.prefix ?? uniquePrefix()
      const publisher = await createRedis(serviceUrls.redis, silent)
      const subscriber = await createRedis(serviceUrls.redis, silent)
      const pubsub = createRedisPubSub({
        publisher: publisher.client,
        subscriber: subscriber.client,
        prefix,
        ...options,
      })
      t.after(async () => {
        await pubsub.close()
        await deleteKeysUnder(publisher.client, prefix)
        await subscriber.close()
        await publisher.close()
      })
      return { pubsub, prefix, advance: (ms) => sleep(ms) }
    },
  },
]

/** Collects what a subscription receives; `next(n)` waits (bounded) for n messages in all. */
function collector() {
  const received: PubSubMessage[] = []
  return {
    received,
    handler: (message: PubSubMessage) => {
      received.push(message)
    },
    async next(count: number, timeoutMs = 2000): Promise<PubSubMessage[]> {
      const deadline = Date.now() + timeoutMs
      while (received.length < count && Date.now() < deadline) await sleep(5)
      assert.ok(received.length >= count, `got ${received.length} of ${count} messages`)
      return received
    },
  }
}

/** Gives a transport time to deliver what it would wrongly deliver. */
const settle = () => sleep(100)

for (const { name, skip, make } of implementations) {
  describe(`the ${name} pub/sub`, { skip }, () => {
    test('a subscriber receives each message published after subscribe resolved, in order, with the id publish gave', async (t) => {
      const { pubsub } = await make(t)
      const inbox = collector()
      await pubsub.subscribe('room:1', inbox.handler)
      const ids = [
        await pubsub.publish('room:1', 'first'),
        await pubsub.publish('room:1', 'second\nline'),
        await pubsub.publish('room:1', ''),
      ]
      const received = await inbox.next(3)
      assert.deepEqual(received, [
        { id: ids[0], data: 'first' },
        { id: ids[1], data: 'second\nline' },
        { id: ids[2], data: '' },
      ])
    })

    test('every subscriber of the channel gets the message; subscribers of other channels do not', async (t) => {
      const { pubsub } = await make(t)
      const [a, b, other] = [collector(), collector(), collector()]
      await pubsub.subscribe('room:1', a.handler)
      await pubsub.subscribe('room:1', b.handler)
      await pubsub.subscribe('room:2', other.handler)
      await pubsub.publish('room:1', 'hello')
      await a.next(1)
      await b.next(1)
      await settle()
      assert.equal(other.received.length, 0)
      assert.equal(a.received.length, 1)
    })

    test('unsubscribe stops delivery at once, twice is harmless, and the other subscribers keep theirs', async (t) => {
      const { pubsub } = await make(t)
      const [leaving, staying] = [collector(), collector()]
      const unsubscribe = await pubsub.subscribe('room:1', leaving.handler)
      await pubsub.subscribe('room:1', staying.handler)
      await pubsub.publish('room:1', 'one')
      await leaving.next(1)
      unsubscribe()
      unsubscribe()
      await pubsub.publish('room:1', 'two')
      await staying.next(2)
      await settle()
      assert.deepEqual(
        leaving.received.map((message) => message.data),
        ['one'],
      )
    })

    test('the last subscriber leaving and a new one arriving at once still receives', async (t) => {
      const { pubsub } = await make(t)
      const first = collector()
      const unsubscribe = await pubsub.subscribe('room:1', first.handler)
      unsubscribe()
      const second = collector()
      await pubsub.subscribe('room:1', second.handler)
      await pubsub.publish('room:1', 'still here')
      assert.equal((await second.next(1))[0]?.data, 'still here')
    })

    test('ids strictly increase within a channel, even within one millisecond', async (t) => {
      const { pubsub } = await make(t)
      const ids = await Promise.all(
        Array.from({ length: 50 }, (_, index) => pubsub.publish('burst', String(index))),
      )
      const sorted = ids.toSorted(compareEventIds)
      assert.equal(new Set(ids).size, 50)
      for (let index = 1; index < sorted.length; index++) {
        assert.ok(compareEventIds(sorted[index] as string, sorted[index - 1] as string) > 0)
      }
      for (const id of ids) assert.match(id, /^\d+-\d+$/)
    })

    test('the history keeps the last historyLimit messages, oldest first, and answers after an id', async (t) => {
      const { pubsub } = await make(t, { historyLimit: 5 })
      assert.deepEqual(await pubsub.history('quiet'), [])
      const ids: string[] = []
      for (let index = 0; index < 8; index++)
        ids.push(await pubsub.publish('orders:7', `m${index}`))
      const all = await pubsub.history('orders:7')
      assert.deepEqual(
        all.map((message) => message.data),
        ['m3', 'm4', 'm5', 'm6', 'm7'],
      )
      assert.deepEqual(
        all.map((message) => message.id),
        ids.slice(3),
      )
      const after = await pubsub.history('orders:7', ids[5])
      assert.deepEqual(
        after.map((message) => message.data),
        ['m6', 'm7'],
      )
      assert.deepEqual(await pubsub.history('orders:7', ids[7]), [])
      assert.deepEqual(
        (await pubsub.history('orders:7', ids[0])).map((message) => message.data),
        ['m3', 'm4', 'm5', 'm6', 'm7'],
        'an id older than the history replays what is left',
      )
    })

    test('a history is dropped historyTtlSeconds after its last publish', async (t) => {
      const { pubsub, advance } = await make(t, { historyTtlSeconds: 2 })
      await pubsub.publish('short', 'a')
      await advance(1000)
      await pubsub.publish('short', 'b')
      await advance(1200)
      assert.equal((await pubsub.history('short')).length, 2, 'the second publish renewed it')
      await advance(1300)
      assert.deepEqual(await pubsub.history('short'), [])
    })

    test('a handler that throws is reported; the other subscribers still get the message', async (t) => {
      const reported: Array<[unknown, string]> = []
      const { pubsub } = await make(t, {
        onHandlerError: (error, channel) => reported.push([error, channel]),
      })
      await pubsub.subscribe('room:1', () => {
        throw new Error('handler bug')
      })
      const inbox = collector()
      await pubsub.subscribe('room:1', inbox.handler)
      await pubsub.publish('room:1', 'x')
      await inbox.next(1)
      assert.equal(reported.length, 1)
      assert.match(String(reported[0]?.[0]), /handler bug/)
      assert.equal(reported[0]?.[1], 'room:1')
    })

    test('bad channel names and message ids are refused', async (t) => {
      const { pubsub } = await make(t)
      for (const bad of ['', 'has space', 'new\nline', 'x'.repeat(201), 'ünïcode']) {
        await assert.rejects(pubsub.publish(bad, 'x'), RangeError)
        await assert.rejects(
          pubsub.subscribe(bad, () => {}),
          RangeError,
        )
        await assert.rejects(pubsub.history(bad), RangeError)
      }
      for (const bad of ['', '12', 'abc-1', '1-2-3', '1-', '-1']) {
        await assert.rejects(pubsub.history('room', bad), RangeError)
      }
    })

    test('a pub/sub under another prefix sees neither the messages nor the history', async (t) => {
      const one = await make(t)
      const other = await make(t)
      const inbox = collector()
      await other.pubsub.subscribe('room:1', inbox.handler)
      await one.pubsub.publish('room:1', 'private')
      await settle()
      assert.equal(inbox.received.length, 0)
      assert.deepEqual(await other.pubsub.history('room:1'), [])
    })

    test('after close, nothing is delivered and publish rejects', async (t) => {
      const { pubsub } = await make(t)
      const inbox = collector()
      await pubsub.subscribe('room:1', inbox.handler)
      await pubsub.close()
      await assert.rejects(pubsub.publish('room:1', 'late'))
      await assert.rejects(pubsub.subscribe('room:1', () => {}))
      await settle()
      assert.equal(inbox.received.length, 0)
    })

    test('ping answers while the transport is up', async (t) => {
      const { pubsub } = await make(t)
      await pubsub.ping()
    })
  })
}

describe('the Redis pub/sub across replicas', redisAvailability, () => {
  const redis = implementations[1]
  test('a message published on one replica reaches the subscribers of every replica', async (t) => {
    assert.ok(redis)
    const prefix = uniquePrefix()
    const first = await redis.make(t, { prefix })
    const second = await redis.make(t, { prefix })
    const [onFirst, onSecond] = [collector(), collector()]
    await first.pubsub.subscribe('chat', onFirst.handler)
    await second.pubsub.subscribe('chat', onSecond.handler)
    const id = await first.pubsub.publish('chat', 'hello from one')
    assert.deepEqual(await onSecond.next(1), [{ id, data: 'hello from one' }])
    assert.deepEqual(await onFirst.next(1), [{ id, data: 'hello from one' }])
    assert.deepEqual(await second.pubsub.history('chat'), [{ id, data: 'hello from one' }])
  })

  test('the history is a capped stream with a TTL under <prefix>:events:', async (t) => {
    assert.ok(redis)
    const { pubsub, prefix } = await redis.make(t, { historyLimit: 3, historyTtlSeconds: 60 })
    for (let index = 0; index < 10; index++) await pubsub.publish('orders:1', String(index))
    const client = await createRedis(serviceUrls.redis, silent)
    t.after(() => client.close())
    const key = `${prefix}:events:orders:1`
    assert.equal(await client.client.xlen(key), 3)
    const ttl = await client.client.pttl(key)
    assert.ok(ttl > 50_000 && ttl <= 60_000, `ttl ${ttl}`)
  })
})

describe('the memory pub/sub', () => {
  test('keeps at most maxHistoryChannels histories, dropping the least recently published', async () => {
    const pubsub = createMemoryPubSub({ maxHistoryChannels: 2 })
    await pubsub.publish('a', '1')
    await pubsub.publish('b', '1')
    await pubsub.publish('a', '2')
    await pubsub.publish('c', '1')
    assert.equal((await pubsub.history('a')).length, 2)
    assert.deepEqual(await pubsub.history('b'), [])
    assert.equal((await pubsub.history('c')).length, 1)
    await pubsub.close()
  })

  test('ids never go back when the clock does', async () => {
    let now = 10_000
    const pubsub = createMemoryPubSub({ clock: { now: () => now } })
    const first = await pubsub.publish('a', '1')
    now = 5_000
    const second = await pubsub.publish('a', '2')
    assert.equal(first, '10000-0')
    assert.equal(second, '10000-1')
    await pubsub.close()
  })

  test('options are checked', () => {
    assert.throws(() => createMemoryPubSub({ historyLimit: 0 }), RangeError)
    assert.throws(() => createMemoryPubSub({ maxHistoryChannels: 1.5 }), RangeError)
    assert.throws(() => createMemoryPubSub({ historyTtlSeconds: 0 }), RangeError)
  })
})
