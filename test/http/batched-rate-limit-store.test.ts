import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { batchedRedisStore } from '../../src/http/plugins/batched-rate-limit-store.ts'
import { freePort } from '../helpers/process.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../helpers/services.ts'

type Count = { current: number; ttl: number }

const hit = (store: FastifyRateLimitStore, key: string, windowMs = 60_000) =>
  new Promise<Count>((resolve, reject) =>
    store.incr(
      key,
      (error, result) => (error || !result ? reject(error) : resolve(result)),
      windowMs,
      10,
    ),
  )

/** A replica: its own connection, and a count of the Redis calls its store makes. */
function replica(nameSpace: string) {
  const redis = new Redis(serviceUrls.redis)
  const Store = batchedRedisStore(redis, nameSpace)
  const counting = redis as unknown as Record<string, (...args: unknown[]) => unknown>
  const send = counting.servekitRateLimitBy?.bind(redis)
  assert.ok(send, 'the store defines its command on the connection')
  const calls = { count: 0 }
  counting.servekitRateLimitBy = (...args: unknown[]) => {
    calls.count++
    return send(...args)
  }
  return { redis, store: new Store({}), calls }
}

test('the batched rate-limit store', await whenReachable('redis'), async (t) => {
  const { prefix, redis } = await useRedisPrefix(t)
  const nameSpace = `${prefix}:rate-limit:`
  const a = replica(nameSpace)
  const b = replica(nameSpace)
  t.after(() => {
    a.redis.disconnect()
    b.redis.disconnect()
  })

  await t.test('concurrent hits on two replicas get every count once, in few calls', async () => {
    const hits = [...Array(200).keys()].map((i) => hit(i % 2 === 0 ? a.store : b.store, 'one'))
    const counts = await Promise.all(hits)
    assert.deepEqual(
      counts.map((count) => count.current).sort((x, y) => x - y),
      [...Array(200).keys()].map((i) => i + 1),
      'each of the 200 hits has its own count, as if sent one by one',
    )
    assert.equal(await redis.get(`${nameSpace}one`), '200')
    const ttl = await redis.pttl(`${nameSpace}one`)
    assert.ok(ttl > 55_000 && ttl <= 60_000, `the window is set once (PTTL ${ttl})`)
    // One call goes at once; the 99 hits behind it on each replica go together as one INCRBY.
    assert.deepEqual([a.calls.count, b.calls.count], [2, 2])
    for (const count of counts) assert.ok(count.ttl > 55_000 && count.ttl <= 60_000)
  })

  await t.test(
    'one hit after another costs a call each, and a new window starts over',
    async () => {
      a.calls.count = 0
      const first = await hit(a.store, 'window', 300)
      const second = await hit(a.store, 'window', 300)
      assert.deepEqual([first.current, second.current], [1, 2])
      assert.equal(first.ttl, 300)
      assert.ok(second.ttl > 0 && second.ttl <= 300)
      assert.equal(a.calls.count, 2)
      await sleep(350)
      assert.equal((await hit(a.store, 'window', 300)).current, 1, 'the expired window starts at 1')
    },
  )

  await t.test("a route's store keeps the library's key names", async () => {
    const route = a.store.child({ routeInfo: { method: 'POST', url: '/api/auth/login' } } as never)
    assert.equal((await hit(route, '127.0.0.1')).current, 1)
    assert.equal(await redis.get(`${nameSpace}POST/api/auth/login-127.0.0.1`), '1')
  })

  await t.test('when Redis cannot be reached every waiting hit gets the error', async () => {
    const down = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    })
    down.on('error', () => {})
    t.after(() => down.disconnect())
    const Store = batchedRedisStore(down, nameSpace)
    const store = new Store({})
    const outcomes = await Promise.allSettled([hit(store, 'x'), hit(store, 'x'), hit(store, 'x')])
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['rejected', 'rejected', 'rejected'],
    )
  })

  await t.test('options it cannot honour are refused', () => {
    const Store = batchedRedisStore(a.redis, nameSpace)
    assert.throws(() => new Store({ continueExceeding: true }), /continueExceeding/)
  })
})
