import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { AppError } from '../../shared/errors.ts'
import { createRedis, reconnectDelayMs } from './redis.ts'
import { startRedisTestServer } from './redis-testing.ts'

const availability = await whenReachable('redis')
const silent = pino({ level: 'silent' })

describe('reconnectDelayMs', () => {
  test('grows exponentially from 50 ms and never passes the cap', () => {
    const fixed = (attempt: number) => reconnectDelayMs(attempt, { random: () => 1 })
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(fixed), [50, 100, 200, 400, 800, 1600])
    assert.equal(fixed(7), 2000)
    assert.equal(fixed(1000), 2000)
    assert.equal(reconnectDelayMs(10, { maxMs: 500, random: () => 1 }), 500)
  })

  test('jitter spreads each delay over the upper half of its step', () => {
    assert.equal(reconnectDelayMs(3, { random: () => 0 }), 100)
    for (let attempt = 1; attempt < 40; attempt++) {
      const delay = reconnectDelayMs(attempt)
      const step = Math.min(2000, 50 * 2 ** (attempt - 1))
      assert.ok(delay >= step / 2 && delay <= step, `attempt ${attempt}: ${delay} ms`)
    }
  })
})

describe('createRedis', availability, () => {
  test('resolves once Redis answers, and close() ends the connection', async () => {
    const connection = await createRedis(serviceUrls.redis, silent, {
      connectionName: 'servekit-test',
    })
    assert.equal(connection.isReady, true)
    assert.equal(await connection.client.ping(), 'PONG')
    await Promise.all([connection.close(), connection.close()])
    assert.equal(connection.isReady, false)
    await assert.rejects(connection.client.ping())
  })

  test('fails start-up fast, naming Redis, when nothing answers', async () => {
    const server = await startRedisTestServer()
    await server.stop()
    const startedAt = performance.now()
    await assert.rejects(
      createRedis(server.url, silent, { connectTimeoutMs: 300 }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'REDIS_UNREACHABLE' &&
        error.message.includes(`127.0.0.1:${server.port}`),
    )
    const tookMs = performance.now() - startedAt
    assert.ok(tookMs < 1000, `took ${tookMs} ms`)
  })

  test('with waitForReady: false it starts degraded and connects once Redis appears', async (t) => {
    const server = await startRedisTestServer()
    await server.stop()
    t.after(() => server.stop())
    const connection = await createRedis(server.url, silent, {
      waitForReady: false,
      maxReconnectDelayMs: 200,
    })
    t.after(() => connection.close())
    assert.equal(connection.isReady, false)
    await assert.rejects(connection.client.ping(), /enableOfflineQueue/)
    await server.start()
    const deadline = performance.now() + 5000
    while (!connection.isReady && performance.now() < deadline) await sleep(20)
    assert.equal(await connection.client.ping(), 'PONG')
  })

  test('the URL password never appears in the start-up error', async () => {
    const server = await startRedisTestServer()
    await server.stop()
    const url = `redis://user:s3cret-pw@127.0.0.1:${server.port}/0`
    await assert.rejects(
      createRedis(url, silent, { connectTimeoutMs: 200 }),
      (error: Error) => !error.message.includes('s3cret-pw'),
    )
  })

  test('a server that stops answering: waiting commands time out, the connection is dropped and comes back', async (t) => {
    const server = await startRedisTestServer()
    t.after(() => server.stop())
    const connection = await createRedis(server.url, silent, {
      commandTimeoutMs: 300,
      maxReconnectDelayMs: 100,
    })
    t.after(() => connection.close())
    // Auto-pipelined: these leave together, as the commands of concurrent requests do.
    await Promise.all([connection.client.set('k', '1'), connection.client.get('k')])

    server.pause()
    const started = performance.now()
    const waiting = await Promise.allSettled([
      connection.client.get('k'),
      connection.client.incr('n'),
      connection.client.get('k'),
    ])
    const tookMs = performance.now() - started
    for (const outcome of waiting) {
      assert.equal(outcome.status, 'rejected')
      assert.match(String(outcome.reason), /Command timed out/)
    }
    // 300 ms of silence, noticed by a check every 60 ms (two to be sure the oldest stayed oldest).
    assert.ok(tookMs >= 300 && tookMs < 1000, `took ${tookMs} ms`)
    // Dropped: while the server stays paused, a command fails at once instead of waiting again.
    const failFast = performance.now()
    await assert.rejects(connection.client.get('k'))
    assert.ok(performance.now() - failFast < 200)

    server.resume()
    const deadline = performance.now() + 5000
    while (!connection.isReady && performance.now() < deadline) await sleep(20)
    assert.equal(await connection.client.get('k'), '1')
  })

  test('a slow answer within the bound is not cut off', async (t) => {
    const server = await startRedisTestServer()
    t.after(() => server.stop())
    const connection = await createRedis(server.url, silent, { commandTimeoutMs: 400 })
    t.after(() => connection.close())
    server.pause()
    const answer = connection.client.ping()
    await sleep(200)
    server.resume()
    assert.equal(await answer, 'PONG')
  })
})
