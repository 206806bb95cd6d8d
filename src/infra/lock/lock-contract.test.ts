import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { AppError } from '../../shared/errors.ts'
import { createRedis, type RedisConnection } from '../redis/index.ts'
import { deleteKeysUnder } from '../redis/redis-testing.ts'
import { LOCK_NOT_ACQUIRED, type LockManager } from './lock.ts'
import { createMemoryLockManager } from './memory-lock.ts'
import { createRedisLockManager } from './redis-lock.ts'

interface Subject {
  /** Managers that contend for the same keys: for Redis, each on its own connection, as
   * separate processes would be. */
  managers: LockManager[]
  /** Lets `ms` pass for the lock store: moves the fake clock (memory) or waits (Redis). */
  advance(ms: number): Promise<void>
}

const redisAvailability = await whenReachable('redis')
const connections: RedisConnection[] = []
after(() => Promise.all(connections.map((connection) => connection.close())))
const silent = pino({ level: 'silent' })

async function redisClients(count: number) {
  while (connections.length < count)
    connections.push(await createRedis(serviceUrls.redis, silent, { connectionName: 'lock-test' }))
  return connections.slice(0, count).map((connection) => connection.client)
}

const implementations: Array<{
  name: string
  skip: string | false
  make(t: TestContext, count?: number): Promise<Subject>
}> = [
  {
    name: 'memory',
    skip: false,
    async make(_t, count = 1) {
      let offsetMs = 0
      // A clock that runs with real time, and jumps when the test moves it.
      const clock = { now: () => Date.now() + offsetMs }
      const manager = createMemoryLockManager({ clock })
      return {
        managers: Array.from({ length: count }, () => manager),
        advance: async (ms) => {
          offsetMs += ms
        },
      }
    },
  },
  {
    name: 'redis',
    skip: redisAvailability.skip,
    async make(t, count = 1) {
      const prefix = `t-${randomBytes(6).toString('hex')}`
      const clients = await redisClients(count)
      t.after(() => (clients[0] ? deleteKeysUnder(clients[0], prefix) : undefined))
      return {
        managers: clients.map((redis) => createRedisLockManager({ redis, prefix })),
        advance: (ms) => sleep(ms),
      }
    },
  },
]

for (const { name, skip, make } of implementations) {
  describe(`the ${name} lock manager`, { skip }, () => {
    test('a free key is acquired with a token; a held one is refused until released', async (t) => {
      const {
        managers: [locks],
      } = await make(t)
      assert.ok(locks)
      const first = await locks.acquire('order:1', { ttlMs: 5000 })
      assert.ok(first)
      assert.equal(first.key, 'order:1')
      assert.match(first.token, /^[\w-]{16,}$/)
      assert.equal(await locks.acquire('order:1', { ttlMs: 5000 }), undefined)
      assert.ok(await locks.acquire('order:2', { ttlMs: 5000 }), 'other keys are independent')
      assert.equal(await first.release(), true)
      assert.equal(await first.release(), false, 'a second release finds nothing to free')
      const second = await locks.acquire('order:1', { ttlMs: 5000 })
      assert.ok(second)
      assert.notEqual(second.token, first.token)
    })

    test('each acquisition gets its own random token', async (t) => {
      const {
        managers: [locks],
      } = await make(t)
      assert.ok(locks)
      const tokens = new Set<string>()
      for (let i = 0; i < 50; i++) {
        const lock = await locks.acquire('k', { ttlMs: 1000 })
        assert.ok(lock)
        tokens.add(lock.token)
        await lock.release()
      }
      assert.equal(tokens.size, 50)
    })

    test('a lock frees itself once its TTL passes', async (t) => {
      const {
        managers: [locks],
        advance,
      } = await make(t)
      assert.ok(locks)
      assert.ok(await locks.acquire('k', { ttlMs: 150 }))
      assert.equal(await locks.acquire('k', { ttlMs: 150 }), undefined)
      await advance(300)
      assert.ok(await locks.acquire('k', { ttlMs: 150 }))
    })

    test("a stale holder's release and extend do not touch the new holder's lock", async (t) => {
      const {
        managers: [a, b],
        advance,
      } = await make(t, 2)
      assert.ok(a && b)
      const stale = await a.acquire('stock:9', { ttlMs: 150 })
      assert.ok(stale)
      await advance(300)
      const current = await b.acquire('stock:9', { ttlMs: 5000 })
      assert.ok(current, 'the expired lock is free for the next holder')
      assert.equal(await stale.release(), false)
      assert.equal(await stale.extend(60_000), false)
      assert.equal(await a.acquire('stock:9', { ttlMs: 5000 }), undefined, 'still held')
      assert.equal(await current.release(), true)
    })

    test('extend by the holder pushes the expiry out', async (t) => {
      const {
        managers: [locks],
        advance,
      } = await make(t)
      assert.ok(locks)
      const lock = await locks.acquire('k', { ttlMs: 200 })
      assert.ok(lock)
      assert.equal(await lock.extend(5000), true)
      await advance(400)
      assert.equal(await locks.acquire('k', { ttlMs: 200 }), undefined)
      assert.equal(await lock.release(), true)
      await assert.rejects(lock.extend(0), RangeError)
    })

    test('acquire with waitMs gets the lock as soon as the holder releases it', async (t) => {
      const {
        managers: [a, b],
      } = await make(t, 2)
      assert.ok(a && b)
      const holder = await a.acquire('k', { ttlMs: 10_000 })
      assert.ok(holder)
      const startedAt = performance.now()
      setTimeout(() => void holder.release(), 100)
      const waiter = await b.acquire('k', { ttlMs: 1000, waitMs: 2000, retryMs: 10 })
      const waitedMs = performance.now() - startedAt
      assert.ok(waiter)
      assert.ok(waitedMs >= 90 && waitedMs < 1000, `waited ${waitedMs} ms`)
    })

    test('acquire gives up once waitMs has passed', async (t) => {
      const {
        managers: [a, b],
      } = await make(t, 2)
      assert.ok(a && b)
      assert.ok(await a.acquire('k', { ttlMs: 10_000 }))
      const startedAt = performance.now()
      assert.equal(await b.acquire('k', { ttlMs: 1000, waitMs: 200, retryMs: 30 }), undefined)
      const waitedMs = performance.now() - startedAt
      assert.ok(waitedMs >= 195 && waitedMs < 700, `waited ${waitedMs} ms`)
    })

    test('withLock runs the work, returns its value and releases, also when it throws', async (t) => {
      const {
        managers: [locks],
      } = await make(t)
      assert.ok(locks)
      const value = await locks.withLock('k', { ttlMs: 5000 }, async (lock) => {
        assert.equal(await locks.acquire('k', { ttlMs: 5000 }), undefined, 'held while running')
        return `done by ${lock.key}`
      })
      assert.equal(value, 'done by k')
      await assert.rejects(
        locks.withLock('k', { ttlMs: 5000 }, async () => {
          throw new Error('work failed')
        }),
        /work failed/,
      )
      const lock = await locks.acquire('k', { ttlMs: 5000 })
      assert.ok(lock, 'released after the failure too')
    })

    test('withLock fails with LOCK_NOT_ACQUIRED (conflict) when the wait bound passes', async (t) => {
      const {
        managers: [a, b],
      } = await make(t, 2)
      assert.ok(a && b)
      assert.ok(await a.acquire('k', { ttlMs: 10_000 }))
      let hasRun = false
      await assert.rejects(
        b.withLock('k', { ttlMs: 1000, waitMs: 50, retryMs: 10 }, async () => {
          hasRun = true
        }),
        (error: unknown) =>
          error instanceof AppError &&
          error.code === LOCK_NOT_ACQUIRED &&
          error.kind === 'conflict',
      )
      assert.equal(hasRun, false)
    })

    test('bad options are refused', async (t) => {
      const {
        managers: [locks],
      } = await make(t)
      assert.ok(locks)
      await assert.rejects(locks.acquire('k', { ttlMs: 0 }), RangeError)
      await assert.rejects(locks.acquire('k', { ttlMs: 1.5 }), RangeError)
      await assert.rejects(locks.acquire('k', { ttlMs: 10, waitMs: -1 }), RangeError)
      await assert.rejects(locks.acquire('k', { ttlMs: 10, retryMs: 0 }), RangeError)
    })

    test('200 concurrent attempts on one key: one holder at a time, all served within the wait bound', async (t) => {
      const { managers } = await make(t, 4)
      const options = { ttlMs: 5000, waitMs: 20_000, retryMs: 10 }
      let holders = 0
      let maxHolders = 0
      let completed = 0
      const startedAt = performance.now()
      const waits = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const locks = managers[i % managers.length] as LockManager
          const attemptAt = performance.now()
          await locks.withLock('hot', options, async () => {
            holders++
            maxHolders = Math.max(maxHolders, holders)
            await sleep(1)
            holders--
            completed++
          })
          return performance.now() - attemptAt
        }),
      )
      const totalMs = performance.now() - startedAt
      assert.equal(maxHolders, 1)
      assert.equal(completed, 200)
      const longestWaitMs = Math.max(...waits)
      assert.ok(longestWaitMs <= options.waitMs + 500, `longest wait ${longestWaitMs} ms`)
      t.diagnostic(
        `200 holders in ${totalMs.toFixed(0)} ms (${(totalMs / 200).toFixed(2)} ms per hand-over), longest wait ${longestWaitMs.toFixed(0)} ms`,
      )
    })

    test('200 concurrent attempts with a short wait bound: the rest fail in time, never two holders', async (t) => {
      const { managers } = await make(t, 4)
      const options = { ttlMs: 5000, waitMs: 100, retryMs: 5 }
      let holders = 0
      let maxHolders = 0
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const locks = managers[i % managers.length] as LockManager
          const attemptAt = performance.now()
          try {
            await locks.withLock('hot', options, async () => {
              holders++
              maxHolders = Math.max(maxHolders, holders)
              await sleep(5)
              holders--
            })
            return { ok: true, ms: performance.now() - attemptAt }
          } catch (error) {
            assert.ok(error instanceof AppError && error.code === LOCK_NOT_ACQUIRED)
            return { ok: false, ms: performance.now() - attemptAt }
          }
        }),
      )
      const served = outcomes.filter((outcome) => outcome.ok).length
      const failed = outcomes.filter((outcome) => !outcome.ok)
      assert.equal(maxHolders, 1)
      assert.ok(served >= 1 && failed.length >= 1, `${served} served, ${failed.length} failed`)
      const slowestFailureMs = Math.max(...failed.map((outcome) => outcome.ms))
      assert.ok(slowestFailureMs < options.waitMs + 500, `a failure took ${slowestFailureMs} ms`)
      t.diagnostic(
        `${served} served, ${failed.length} refused; slowest refusal ${slowestFailureMs.toFixed(0)} ms`,
      )
    })
  })
}

describe('the redis lock manager', { skip: redisAvailability.skip }, () => {
  test('stores the lock as <prefix>:lock:<key> with the lease as its TTL', async () => {
    const [client] = await redisClients(1)
    assert.ok(client)
    const prefix = `t-${randomBytes(6).toString('hex')}`
    const lock = await createRedisLockManager({ redis: client, prefix }).acquire('order:1', {
      ttlMs: 5000,
    })
    assert.ok(lock)
    assert.equal(await client.get(`${prefix}:lock:order:1`), lock.token)
    const pttl = await client.pttl(`${prefix}:lock:order:1`)
    assert.ok(pttl > 4000 && pttl <= 5000, `pttl ${pttl}`)
    await lock.release()
    assert.equal(await client.exists(`${prefix}:lock:order:1`), 0)
    await deleteKeysUnder(client, prefix)
  })
})
