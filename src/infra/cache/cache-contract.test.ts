import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { createRedis, type RedisConnection } from '../redis/index.ts'
import { deleteKeysUnder, scanKeys } from '../redis/redis-testing.ts'
import type { Cache } from './cache.ts'
import { createMemoryCache } from './memory-cache.ts'
import { createRedisCache } from './redis-cache.ts'

/** One implementation under test, with the two things only the test may do to it. */
interface Subject {
  cache: Cache
  prefix: string
  /** Lets `ms` pass for the cache: moves the fake clock (memory) or waits (Redis). */
  advance(ms: number): Promise<void>
  /** The keys as stored, prefix included. */
  storedKeys(): Promise<string[]>
}

const redisAvailability = await whenReachable('redis')
let connection: RedisConnection | undefined
const redis = async () => {
  connection ??= await createRedis(serviceUrls.redis, pino({ level: 'silent' }))
  return connection.client
}
after(() => connection?.close())

const uniquePrefix = () => `t-${randomBytes(6).toString('hex')}`

const implementations: Array<{
  name: string
  skip: string | false
  make(t: TestContext): Promise<Subject>
}> = [
  {
    name: 'memory',
    skip: false,
    async make(t) {
      let now = Date.now()
      const prefix = uniquePrefix()
      const cache = createMemoryCache({ prefix, maxEntries: 1000, clock: { now: () => now } })
      t.after(() => cache.close())
      return {
        cache,
        prefix,
        advance: async (ms) => {
          now += ms
        },
        storedKeys: async () => cache.keys(),
      }
    },
  },
  {
    name: 'redis',
    skip: redisAvailability.skip,
    async make(t) {
      const client = await redis()
      const prefix = uniquePrefix()
      const cache = createRedisCache({ redis: client, prefix })
      t.after(() => deleteKeysUnder(client, prefix))
      return {
        cache,
        prefix,
        advance: (ms) => sleep(ms),
        storedKeys: () => scanKeys(client, `${prefix}:*`),
      }
    },
  },
]

for (const { name, skip, make } of implementations) {
  describe(`the ${name} cache`, { skip }, () => {
    test('get answers what set stored, undefined for a missing key', async (t) => {
      const { cache } = await make(t)
      assert.equal(await cache.get('missing'), undefined)
      await cache.set('greeting', 'hello')
      assert.equal(await cache.get('greeting'), 'hello')
      await cache.set('greeting', 'hello again')
      assert.equal(await cache.get('greeting'), 'hello again')
      await cache.set('empty', '')
      assert.equal(await cache.get('empty'), '')
    })

    test('a value set with a TTL is gone once the TTL passes', async (t) => {
      const { cache, advance } = await make(t)
      await cache.set('short', 'v', 0.2)
      await cache.setJson('short-json', { a: 1 }, 0.2)
      assert.equal(await cache.get('short'), 'v')
      await advance(350)
      assert.equal(await cache.get('short'), undefined)
      assert.equal(await cache.getJson('short-json'), undefined)
      assert.equal(await cache.exists('short'), false)
      assert.equal(await cache.ttl('short'), -2)
    })

    test('set without a TTL clears the TTL a key had', async (t) => {
      const { cache } = await make(t)
      await cache.set('k', 'v', 60)
      assert.equal(await cache.ttl('k'), 60)
      await cache.set('k', 'w')
      assert.equal(await cache.ttl('k'), -1)
    })

    test('JSON values round-trip, and what is returned is a copy', async (t) => {
      const { cache } = await make(t)
      const item = { id: '7205759403792793601', name: 'Lamp', price: 19.5, tags: ['a', 'b'] }
      await cache.setJson('item', item, 60)
      const read = await cache.getJson<typeof item>('item')
      assert.deepEqual(read, item)
      assert.ok(read)
      read.tags.push('c')
      assert.deepEqual(await cache.getJson('item'), item)
      await cache.setJson('null', null)
      assert.equal(await cache.getJson('null'), null)
      assert.equal(await cache.getJson('missing'), undefined)
      await assert.rejects(cache.setJson('bad', undefined), TypeError)
      await cache.set('not-json', '{oops')
      await assert.rejects(cache.getJson('not-json'), SyntaxError)
    })

    test('delete removes the keys and counts those that existed', async (t) => {
      const { cache } = await make(t)
      await cache.set('a', '1')
      await cache.hashSet('b', { f: '1' })
      await cache.listPush('c', ['x'])
      assert.equal(await cache.delete('a', 'b', 'c', 'missing'), 3)
      assert.equal(await cache.exists('a'), false)
      assert.equal(await cache.delete('a'), 0)
      assert.equal(await cache.delete(), 0)
    })

    test('expire sets a TTL on an existing key, refuses a missing one, deletes at zero', async (t) => {
      const { cache, advance } = await make(t)
      await cache.set('k', 'v')
      assert.equal(await cache.expire('k', 30), true)
      assert.equal(await cache.ttl('k'), 30)
      assert.equal(await cache.expire('missing', 30), false)
      await cache.listPush('list', ['x'])
      assert.equal(await cache.expire('list', 0.2), true)
      await advance(350)
      assert.equal(await cache.exists('list'), false)
      await cache.set('doomed', 'v')
      assert.equal(await cache.expire('doomed', 0), true)
      assert.equal(await cache.exists('doomed'), false)
    })

    test('ttl answers -2 for a missing key, -1 without expiry, else the seconds left', async (t) => {
      const { cache, advance } = await make(t)
      assert.equal(await cache.ttl('missing'), -2)
      await cache.set('forever', 'v')
      assert.equal(await cache.ttl('forever'), -1)
      await cache.set('soon', 'v', 10)
      assert.equal(await cache.ttl('soon'), 10)
      await advance(1200)
      assert.equal(await cache.ttl('soon'), 9)
    })

    test('a TTL that is not a positive number is refused', async (t) => {
      const { cache } = await make(t)
      for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(cache.set('k', 'v', bad), RangeError)
        await assert.rejects(cache.setJson('k', 1, bad), RangeError)
        await assert.rejects(cache.increment('n', 1, bad), RangeError)
      }
      assert.equal(await cache.exists('k'), false)
    })

    test('hashes: set merges fields, get and getAll read them, delete drops the empty hash', async (t) => {
      const { cache } = await make(t)
      assert.deepEqual(await cache.hashGetAll('session'), {})
      assert.equal(await cache.hashGet('session', 'user'), undefined)
      await cache.hashSet('session', { user: '42', role: 'admin' })
      await cache.hashSet('session', { role: 'reader', ip: '10.0.0.1' })
      await cache.hashSet('session', {})
      assert.equal(await cache.hashGet('session', 'role'), 'reader')
      assert.equal(await cache.hashGet('session', 'missing'), undefined)
      assert.deepEqual(await cache.hashGetAll('session'), {
        user: '42',
        role: 'reader',
        ip: '10.0.0.1',
      })
      assert.equal(await cache.hashDelete('session', 'user', 'missing'), 1)
      assert.equal(await cache.hashDelete('session'), 0)
      assert.equal(await cache.hashDelete('session', 'role', 'ip'), 2)
      assert.equal(await cache.exists('session'), false)
      assert.equal(await cache.hashDelete('session', 'role'), 0)
    })

    test('hash writes keep the TTL the key has', async (t) => {
      const { cache } = await make(t)
      await cache.hashSet('h', { a: '1' })
      await cache.expire('h', 60)
      await cache.hashSet('h', { b: '2' })
      assert.equal(await cache.ttl('h'), 60)
    })

    test('lists: push on either side, range as LRANGE, pop from either side', async (t) => {
      const { cache } = await make(t)
      assert.equal(await cache.listPush('q', ['a', 'b']), 2)
      assert.equal(await cache.listPush('q', ['x', 'y'], 'left'), 4)
      assert.equal(await cache.listPush('q', ['c'], 'right'), 5)
      assert.deepEqual(await cache.listRange('q', 0, -1), ['y', 'x', 'a', 'b', 'c'])
      assert.deepEqual(await cache.listRange('q', 1, 2), ['x', 'a'])
      assert.deepEqual(await cache.listRange('q', -2, -1), ['b', 'c'])
      assert.deepEqual(await cache.listRange('q', -100, 0), ['y'])
      assert.deepEqual(await cache.listRange('q', 3, 100), ['b', 'c'])
      assert.deepEqual(await cache.listRange('q', 4, 2), [])
      assert.deepEqual(await cache.listRange('q', 9, 12), [])
      assert.deepEqual(await cache.listRange('missing', 0, -1), [])
      await assert.rejects(cache.listRange('q', 0.5, 1), RangeError)
      assert.equal(await cache.listPush('q', []), 5)
      assert.equal(await cache.listPush('missing', []), 0)
      assert.equal(await cache.listPop('q'), 'c')
      assert.equal(await cache.listPop('q', 'left'), 'y')
      assert.equal(await cache.listPop('q', 'right'), 'b')
      assert.deepEqual(await cache.listRange('q', 0, -1), ['x', 'a'])
    })

    test('popping the last element deletes the list; popping a missing list gives undefined', async (t) => {
      const { cache } = await make(t)
      await cache.listPush('q', ['only'])
      assert.equal(await cache.listPop('q', 'left'), 'only')
      assert.equal(await cache.exists('q'), false)
      assert.equal(await cache.listPop('q'), undefined)
      assert.equal(await cache.listPop('q', 'left'), undefined)
    })

    test('increment counts from zero, by any integer, and sets the TTL only on a new key', async (t) => {
      const { cache } = await make(t)
      assert.equal(await cache.increment('hits'), 1)
      assert.equal(await cache.increment('hits', 5), 6)
      assert.equal(await cache.increment('hits', -10), -4)
      assert.equal(await cache.ttl('hits'), -1)
      assert.equal(await cache.get('hits'), '-4')

      assert.equal(await cache.increment('window', 1, 60), 1)
      assert.equal(await cache.ttl('window'), 60)
      assert.equal(await cache.increment('window', 1, 5), 2)
      assert.equal(await cache.ttl('window'), 60, 'a later increment keeps the first TTL')
      assert.equal(await cache.increment('hits', 1, 60), -3)
      assert.equal(await cache.ttl('hits'), -1, 'an existing key without TTL gets none')

      await cache.set('counter', '10', 60)
      assert.equal(await cache.increment('counter'), 11)
      assert.equal(await cache.ttl('counter'), 60, 'increment keeps the TTL the key has')
    })

    test('a windowed counter starts again once its TTL passes', async (t) => {
      const { cache, advance } = await make(t)
      assert.equal(await cache.increment('w', 1, 0.2), 1)
      assert.equal(await cache.increment('w', 1, 0.2), 2)
      await advance(350)
      assert.equal(await cache.increment('w', 1, 0.2), 1)
    })

    test('increment is atomic: 200 concurrent increments count 200', async (t) => {
      const { cache } = await make(t)
      const results = await Promise.all(
        Array.from({ length: 200 }, () => cache.increment('concurrent', 1, 60)),
      )
      assert.equal(await cache.get('concurrent'), '200')
      assert.deepEqual(
        results.toSorted((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i + 1),
      )
    })

    test('increment refuses a fraction, and a value that is not an integer', async (t) => {
      const { cache } = await make(t)
      await assert.rejects(cache.increment('n', 1.5), RangeError)
      for (const text of ['abc', '1.5', ' 1', '01', '']) {
        await cache.set('text', text)
        await assert.rejects(
          cache.increment('text'),
          /not an integer/,
          `value ${JSON.stringify(text)}`,
        )
      }
    })

    test('a command against a key of another type fails with WRONGTYPE, as in Redis', async (t) => {
      const { cache } = await make(t)
      await cache.set('string', 'v')
      await cache.hashSet('hash', { f: 'v' })
      await cache.listPush('list', ['v'])
      await assert.rejects(cache.hashGet('string', 'f'), /WRONGTYPE/)
      await assert.rejects(cache.hashSet('list', { f: 'v' }), /WRONGTYPE/)
      await assert.rejects(cache.listPush('hash', ['v']), /WRONGTYPE/)
      await assert.rejects(cache.listRange('string', 0, -1), /WRONGTYPE/)
      await assert.rejects(cache.get('hash'), /WRONGTYPE/)
      await assert.rejects(cache.increment('list'), /WRONGTYPE/)
      await assert.rejects(cache.increment('list', 1, 10), /WRONGTYPE/)
      await cache.set('hash', 'now a string')
      assert.equal(await cache.get('hash'), 'now a string', 'set replaces a key of any type')
    })

    test('every key is stored under <prefix>:, and caches with other prefixes do not see it', async (t) => {
      const { cache, prefix, storedKeys } = await make(t)
      await cache.set('items:1', '{}')
      await cache.hashSet('session:abc', { user: '1' })
      await cache.listPush('recent', ['1'])
      await cache.increment('rate:127.0.0.1', 1, 60)
      assert.deepEqual((await storedKeys()).toSorted(), [
        `${prefix}:items:1`,
        `${prefix}:rate:127.0.0.1`,
        `${prefix}:recent`,
        `${prefix}:session:abc`,
      ])
      const other = await make(t)
      assert.equal(await other.cache.get('items:1'), undefined)
      assert.equal(await other.cache.exists('recent'), false)
    })

    test('ping answers while the store is up', async (t) => {
      const { cache } = await make(t)
      await cache.ping()
    })
  })
}

describe('the memory cache', () => {
  test('past maxEntries the least recently used key is evicted', async (t) => {
    const cache = createMemoryCache({ prefix: 'app', maxEntries: 3 })
    t.after(() => cache.close())
    await cache.set('a', '1')
    await cache.set('b', '2')
    await cache.hashSet('c', { f: '3' })
    assert.equal(await cache.get('a'), '1', 'reading a makes b the least recently used')
    await cache.listPush('d', ['4'])
    assert.equal(cache.size, 3)
    assert.equal(await cache.exists('b'), false)
    assert.deepEqual(cache.keys(), ['app:c', 'app:a', 'app:d'])
    await cache.set('e', '5')
    assert.equal(await cache.exists('c'), false)
    assert.equal(await cache.get('a'), '1')
  })

  test('the bound holds under many writes', async (t) => {
    const cache = createMemoryCache({ prefix: 'app', maxEntries: 100 })
    t.after(() => cache.close())
    for (let i = 0; i < 10_000; i++) await cache.set(`k${i}`, String(i))
    assert.equal(cache.size, 100)
    assert.equal(await cache.get('k9999'), '9999')
    assert.equal(await cache.get('k9899'), undefined)
  })

  test('expired keys are swept without being read', async (t) => {
    let now = Date.now()
    const cache = createMemoryCache({
      prefix: 'app',
      maxEntries: 100,
      clock: { now: () => now },
      sweepIntervalMs: 5,
    })
    t.after(() => cache.close())
    for (let i = 0; i < 50; i++) await cache.set(`short${i}`, 'v', 1)
    await cache.set('long', 'v', 60)
    await cache.set('forever', 'v')
    assert.equal(cache.size, 52)
    now += 1500
    const deadline = Date.now() + 2000
    while (cache.size > 2 && Date.now() < deadline) await sleep(10)
    assert.deepEqual(cache.keys().toSorted(), ['app:forever', 'app:long'])
  })

  test('maxEntries must be a positive integer', () => {
    assert.throws(() => createMemoryCache({ prefix: 'app', maxEntries: 0 }), RangeError)
    assert.throws(() => createMemoryCache({ prefix: 'app', maxEntries: 1.5 }), RangeError)
  })
})
