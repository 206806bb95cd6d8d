import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { deleteKeysUnder } from '../redis/redis-testing.ts'
import { createMemoryLockManager } from './memory-lock.ts'
import { createRedisLockManager } from './redis-lock.ts'
import { leaseWorkerId } from './worker-id-lease.ts'

test(
  'processes leasing worker ids through Redis get distinct ids; a released id can be taken again',
  await whenReachable('redis'),
  async (t) => {
    const prefix = `t-${randomBytes(4).toString('hex')}`
    const clients = [new Redis(serviceUrls.redis), new Redis(serviceUrls.redis)]
    t.after(async () => {
      await deleteKeysUnder(clients[0] as Redis, prefix)
      for (const client of clients) client.disconnect()
    })
    // Two "processes": separate connections and lock managers on one Redis.
    const managers = clients.map((redis) => createRedisLockManager({ redis, prefix }))
    const leases = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        leaseWorkerId(managers[i % 2] as ReturnType<typeof createRedisLockManager>),
      ),
    )
    const ids = leases.map((lease) => lease.workerId)
    assert.equal(new Set(ids).size, 40, 'no two leases share an id')
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 1024))

    const first = leases[0]
    assert.ok(first)
    assert.equal(await clients[0]?.exists(`${prefix}:lock:snowflake-worker:${first.workerId}`), 1)
    await first.release()
    assert.equal(await clients[0]?.exists(`${prefix}:lock:snowflake-worker:${first.workerId}`), 0)
    for (const lease of leases.slice(1)) await lease.release()
  },
)

test('when every id is leased, leasing fails with a message naming WORKER_ID', async () => {
  const locks = createMemoryLockManager()
  const leases = []
  for (let i = 0; i < 1024; i++) leases.push(await leaseWorkerId(locks))
  assert.equal(new Set(leases.map((lease) => lease.workerId)).size, 1024)
  await assert.rejects(leaseWorkerId(locks), /set WORKER_ID/)
  for (const lease of leases) await lease.release()
})
