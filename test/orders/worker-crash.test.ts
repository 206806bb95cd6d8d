import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Container } from '../../src/container/index.ts'
import type { DialectName } from '../../src/infra/db/index.ts'
import { orderTaskId } from '../../src/modules/orders/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { createTestDatabase, dialectOptions } from '../helpers/db.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import {
  client,
  createItem,
  deleteRedisKeys,
  signIn,
  startCommand,
  TEST_ENV,
  terminate,
  uniqueAppName,
  waitFor,
} from './order-helpers.ts'

const ORDERS = 1000
const START_STOCK = 1000

async function settledCount(container: Container): Promise<number> {
  const row = await container.db.db
    .selectFrom('orders')
    .select((eb) => eb.fn.countAll().as('count'))
    .where('status', '<>', 'pending')
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

const redis = await whenReachable('redis')
const DIALECTS: readonly DialectName[] = ['mysql', 'postgres', 'sqlite']
const cases = await Promise.all(
  DIALECTS.map(async (dialect) => {
    const database = await dialectOptions(dialect)
    return { dialect, options: { skip: redis.skip || database.skip } }
  }),
)

describe('a worker killed with SIGKILL in the middle of 1,000 order jobs', () => {
  for (const { dialect, options } of cases) {
    test(
      `on ${dialect}: a second worker takes over; all done, none lost, none deducted twice`,
      options,
      async (t) => {
        const databaseUrl = await createTestDatabase(t, dialect)
        const appName = uniqueAppName('crash')
        // Short locks so the dead worker's jobs come back within seconds (production: 30 s).
        const env = {
          APP_NAME: appName,
          REDIS_URL: serviceUrls.redis,
          DATABASE_URL: databaseUrl,
          TASK_LOCK_DURATION_MS: '2000',
          TASK_STALLED_INTERVAL_MS: '500',
          WORKER_CONCURRENCY: '10',
        }
        const { baseUrl, container } = await buildTestApp(t, {
          ...TEST_ENV,
          ...env,
          DB_POOL_SIZE: '20',
          // A burst of requests queues for the pool; on a loaded machine that wait may pass the
          // 5 s default (PostgreSQL's pool then fails the request).
          DB_CONNECT_TIMEOUT_MS: '30000',
        })
        t.after(() => deleteRedisKeys(appName))
        const call = client(baseUrl)
        const token = await signIn(baseUrl)
        const items = [
          await createItem(baseUrl, token, START_STOCK),
          await createItem(baseUrl, token, START_STOCK),
        ]

        // 1,000 orders of 1 to 3 units over two items (about 1,000 units asked of each), queued
        // while no worker runs.
        const orderIds: string[] = []
        for (let start = 0; start < ORDERS; start += 100) {
          const batch = await Promise.all(
            Array.from({ length: 100 }, (_, offset) =>
              call<{ id: string }>('POST', '/api/orders', {
                token,
                body: {
                  item_id: items[(start + offset) % 2],
                  quantity: ((start + offset) % 3) + 1,
                },
              }),
            ),
          )
          for (const answer of batch) {
            assert.equal(answer.status, 202)
            orderIds.push(answer.body.id)
          }
        }

        const first = await startCommand(t, 'worker', env)
        await waitFor(
          'a quarter settled',
          async () => ((await settledCount(container)) >= ORDERS / 4 ? true : undefined),
          30_000,
          20,
        )
        first.child.kill('SIGKILL')
        assert.equal(await first.exited, 'SIGKILL')
        const killedAt = Date.now()
        const settledAtKill = await settledCount(container)
        assert.ok(
          settledAtKill < ORDERS,
          `the worker died before the end (${settledAtKill} settled)`,
        )

        const second = await startCommand(t, 'worker', env)
        await waitFor(
          'every order settled',
          async () => ((await settledCount(container)) === ORDERS ? true : undefined),
          30_000,
          50,
        )
        const recoveredMs = Date.now() - killedAt

        const orders = await container.db.db
          .selectFrom('orders')
          .select(['id', 'item_id', 'quantity', 'status', 'reason'])
          .execute()
        assert.equal(orders.length, ORDERS, 'none lost, none added')
        assert.deepEqual(new Set(orders.map((order) => order.id)), new Set(orderIds))
        for (const itemId of items) {
          const row = await container.db.db
            .selectFrom('items')
            .select('stock')
            .where('id', '=', itemId)
            .executeTakeFirstOrThrow()
          const stock = Number(row.stock)
          const sold = orders
            .filter((order) => order.item_id === itemId && order.status === 'completed')
            .reduce((sum, order) => sum + order.quantity, 0)
          assert.ok(stock >= 0, `stock ${stock}`)
          assert.equal(sold, START_STOCK - stock, 'completed quantities = stock taken: none twice')
          const rejected = orders.filter(
            (order) => order.item_id === itemId && order.status === 'rejected',
          )
          assert.ok(rejected.every((order) => order.reason === 'insufficient_stock'))
          // Rejections happen only once the stock cannot cover an order of 1 to 3 units.
          if (rejected.length > 0) assert.ok(stock < 3, `rejected with ${stock} in stock`)
        }

        // Jobs the dead worker had taken ran again (attempt 2) on the second worker.
        const statuses = await Promise.all(
          orderIds.map((id) => container.tasks.status(orderTaskId(id))),
        )
        assert.ok(statuses.every((status) => status?.state === 'succeeded'))
        const retaken = statuses.filter((status) => (status?.attempts ?? 0) >= 2).length
        // Of those, the ones whose transaction had committed before the kill ran twice: the second
        // run found the order settled and changed nothing (the sums above prove it).
        const ranTwice = statuses.filter(
          (status) => (status?.result as { repeated?: boolean } | undefined)?.repeated,
        ).length
        assert.ok(retaken >= 1, 'some jobs were taken back from the dead worker')
        assert.equal(await terminate(second), 0, second.output())
        t.diagnostic(
          `${dialect}: killed with ${settledAtKill}/${ORDERS} settled; ${retaken} jobs taken back and run again (${ranTwice} of them had committed already); all ${ORDERS} settled ${recoveredMs} ms after the kill`,
        )
      },
    )
  }
})
