import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { whenReachable } from '../../../test/helpers/services.ts'
import { AppError } from '../../shared/errors.ts'
import { LOCK_UNAVAILABLE } from '../lock/lock.ts'
import { createRedisLockManager } from '../lock/redis-lock.ts'
import { createRedis, type RedisConnection } from '../redis/redis.ts'
import { type RedisTestServer, startRedisTestServer } from '../redis/redis-testing.ts'
import type { Cache } from './cache.ts'
import { createRedisCache } from './redis-cache.ts'

// The suite runs its own redis-server, which it stops, pauses and restarts; the shared one on
// 6379 is never touched. It needs Redis installed, as the shared-server suites do.
const availability = await whenReachable('redis')
const COMMAND_TIMEOUT_MS = 500

function isUnavailable(code: string) {
  return (error: unknown) =>
    error instanceof AppError && error.kind === 'unavailable' && error.code === code
}

/** Runs `call`, asserting it rejects with `code` within `boundMs`; answers how long it took. */
async function rejectsWithin(call: () => Promise<unknown>, code: string, boundMs: number) {
  const startedAt = performance.now()
  await assert.rejects(call(), isUnavailable(code))
  const tookMs = performance.now() - startedAt
  assert.ok(tookMs < boundMs, `rejected after ${tookMs.toFixed(0)} ms, bound ${boundMs} ms`)
  return tookMs
}

/** Every Cache member that talks to Redis, with arguments that would succeed on a live server. */
const cacheCalls = (cache: Cache): Array<[string, () => Promise<unknown>]> => [
  ['get', () => cache.get('k')],
  ['set', () => cache.set('k', 'v', 60)],
  ['getJson', () => cache.getJson('k')],
  ['setJson', () => cache.setJson('k', { a: 1 })],
  ['delete', () => cache.delete('k')],
  ['expire', () => cache.expire('k', 10)],
  ['exists', () => cache.exists('k')],
  ['ttl', () => cache.ttl('k')],
  ['hashSet', () => cache.hashSet('h', { f: 'v' })],
  ['hashGet', () => cache.hashGet('h', 'f')],
  ['hashGetAll', () => cache.hashGetAll('h')],
  ['hashDelete', () => cache.hashDelete('h', 'f')],
  ['listPush', () => cache.listPush('l', ['v'])],
  ['listRange', () => cache.listRange('l', 0, -1)],
  ['listPop', () => cache.listPop('l')],
  ['increment', () => cache.increment('n')],
  ['increment with TTL', () => cache.increment('w', 1, 60)],
  ['ping', () => cache.ping()],
]

describe('a Redis cache when its server goes away and comes back', availability, () => {
  let server: RedisTestServer
  let connection: RedisConnection
  let cache: Cache
  const logLines: Array<{ level: number; msg: string }> = []
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)

  before(async () => {
    process.on('unhandledRejection', onUnhandled)
    server = await startRedisTestServer()
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => logLines.push(JSON.parse(line)) },
    )
    connection = await createRedis(server.url, logger, {
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      maxReconnectDelayMs: 500,
    })
    cache = createRedisCache({ redis: connection.client, prefix: 'resilience' })
  })

  after(async () => {
    await connection?.close()
    await server?.stop()
    process.off('unhandledRejection', onUnhandled)
  })

  test('works while the server is up', async () => {
    await cache.set('k', 'v')
    assert.equal(await cache.get('k'), 'v')
    assert.equal(await cache.increment('w', 1, 60), 1)
    assert.equal(connection.isReady, true)
  })

  test('with the server stopped, every call rejects fast as CACHE_UNAVAILABLE', async (t) => {
    await server.stop()
    const timings: string[] = []
    // The first calls may race the client noticing the closed socket; all must still be bounded.
    for (const [name, call] of cacheCalls(cache)) {
      const tookMs = await rejectsWithin(call, 'CACHE_UNAVAILABLE', 1000)
      timings.push(`${name} ${tookMs.toFixed(1)}`)
    }
    await sleep(1500) // several reconnect attempts fail meanwhile
    assert.equal(connection.isReady, false)
    for (const [, call] of cacheCalls(cache)) await rejectsWithin(call, 'CACHE_UNAVAILABLE', 250)
    const burstStart = performance.now()
    const burst = await Promise.allSettled(Array.from({ length: 500 }, () => cache.get('k')))
    const burstMs = performance.now() - burstStart
    assert.ok(burst.every((outcome) => outcome.status === 'rejected'))
    assert.ok(burstMs < 500, `500 concurrent gets took ${burstMs.toFixed(0)} ms to fail`)
    t.diagnostic(
      `first rejections (ms): ${timings.join(', ')}; 500 gets failed in ${burstMs.toFixed(1)} ms`,
    )
  })

  test('with the server stopped, locks reject fast as LOCK_UNAVAILABLE', async () => {
    const locks = createRedisLockManager({ redis: connection.client, prefix: 'resilience' })
    await rejectsWithin(
      () => locks.acquire('k', { ttlMs: 1000, waitMs: 5000 }),
      LOCK_UNAVAILABLE,
      250,
    )
    let hasRun = false
    await rejectsWithin(
      () =>
        locks.withLock('k', { ttlMs: 1000 }, async () => {
          hasRun = true
        }),
      LOCK_UNAVAILABLE,
      250,
    )
    assert.equal(hasRun, false)
  })

  test('after a restart on the same port the same client works again within seconds', async (t) => {
    await server.start()
    const restartedAt = performance.now()
    const deadline = restartedAt + 5000
    for (;;) {
      try {
        await cache.ping()
        break
      } catch (error) {
        assert.ok(isUnavailable('CACHE_UNAVAILABLE')(error))
        if (performance.now() > deadline) throw new Error('the cache did not recover within 5 s')
        await sleep(25)
      }
    }
    const recoveredMs = performance.now() - restartedAt
    t.diagnostic(`usable again ${recoveredMs.toFixed(0)} ms after the server restarted`)
    await cache.set('k', 'after restart')
    assert.equal(await cache.get('k'), 'after restart')
    // The restarted server has an empty script cache: EVALSHA fails with NOSCRIPT, EVAL follows.
    assert.equal(await cache.increment('w', 1, 60), 1)
    const locks = createRedisLockManager({ redis: connection.client, prefix: 'resilience' })
    const lock = await locks.acquire('k', { ttlMs: 1000 })
    assert.ok(lock)
    assert.equal(await lock.release(), true)
  })

  test('a server that stops answering (paused) makes calls reject after the command timeout', async () => {
    server.pause()
    try {
      const tookMs = await rejectsWithin(
        () => cache.get('k'),
        'CACHE_UNAVAILABLE',
        COMMAND_TIMEOUT_MS + 500,
      )
      assert.ok(tookMs >= COMMAND_TIMEOUT_MS - 50, `rejected after ${tookMs} ms`)
      // The timeout dropped the connection: the next calls fail at once, not after another timeout.
      await sleep(20)
      await rejectsWithin(() => cache.get('k'), 'CACHE_UNAVAILABLE', 100)
      await rejectsWithin(() => cache.ping(), 'CACHE_UNAVAILABLE', 100)
    } finally {
      server.resume()
    }
    const deadline = performance.now() + 5000
    while (performance.now() < deadline) {
      try {
        assert.equal(await cache.get('k'), 'after restart')
        break
      } catch {
        await sleep(25)
      }
    }
    assert.equal(await cache.get('k'), 'after restart')
  })

  test('nothing crashed: no unhandled rejection, one log line per state change', async () => {
    await sleep(50)
    assert.deepEqual(unhandled, [])
    const messages = logLines.filter((line) => line.level >= 30).map((line) => line.msg)
    assert.deepEqual(messages, [
      'redis connected',
      'redis connection lost; reconnecting',
      'redis connection restored',
      'redis stopped answering: reconnecting',
      'redis connection restored',
    ])
  })
})
