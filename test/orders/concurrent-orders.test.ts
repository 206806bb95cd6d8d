import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Container } from '../../src/container/index.ts'
import type { DialectName } from '../../src/infra/db/index.ts'
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

/** Orders by status, and the item's stock, read straight from the database. */
async function tally(container: Container, itemId: string) {
  const rows = await container.db.db
    .selectFrom('orders')
    .select(['status', 'reason'])
    .select((eb) => eb.fn.countAll().as('count'))
    .groupBy(['status', 'reason'])
    .execute()
  const count = (status: string, reason: string | null = null) =>
    Number(rows.find((row) => row.status === status && row.reason === reason)?.count ?? 0)
  const item = await container.db.db
    .selectFrom('items')
    .select('stock')
    .where('id', '=', itemId)
    .executeTakeFirstOrThrow()
  return {
    pending: count('pending'),
    completed: count('completed'),
    rejected: count('rejected', 'insufficient_stock'),
    other: rows.filter((row) => row.reason !== null && row.reason !== 'insufficient_stock').length,
    stock: Number(item.stock),
  }
}

const redis = await whenReachable('redis')
/** The Must show runs on MariaDB; PostgreSQL and SQLite (shared by the three processes) too. */
const DIALECTS: readonly DialectName[] = ['mysql', 'postgres', 'sqlite']
const cases = await Promise.all(
  DIALECTS.map(async (dialect) => {
    const database = await dialectOptions(dialect)
    return { dialect, options: { skip: redis.skip || database.skip } }
  }),
)

describe('stock 100, 500 concurrent single-unit orders, two worker processes', () => {
  for (const { dialect, options } of cases) {
    test(
      `on ${dialect} with Redis: exactly 100 completed, 400 rejected, stock 0, never negative`,
      options,
      async (t) => {
        const databaseUrl = await createTestDatabase(t, dialect)
        const appName = uniqueAppName('orders500')
        const env = { APP_NAME: appName, REDIS_URL: serviceUrls.redis, DATABASE_URL: databaseUrl }
        const { baseUrl, container } = await buildTestApp(t, {
          ...TEST_ENV,
          ...env,
          DB_POOL_SIZE: '20',
          // A burst of requests queues for the pool; on a loaded machine that wait may pass the
          // 5 s default (PostgreSQL's pool then fails the request).
          DB_CONNECT_TIMEOUT_MS: '30000',
        })
        const workers = await Promise.all([
          // Debug logs one line per task run: they show which process ran what.
          startCommand(t, 'worker', { ...env, WORKER_CONCURRENCY: '10', LOG_LEVEL: 'debug' }),
          startCommand(t, 'worker', { ...env, WORKER_CONCURRENCY: '10', LOG_LEVEL: 'debug' }),
        ])
        t.after(() => deleteRedisKeys(appName))
        const call = client(baseUrl)
        const token = await signIn(baseUrl)
        const itemId = await createItem(baseUrl, token, 100)

        const startedMs = performance.now()
        const answers = await Promise.all(
          Array.from({ length: 500 }, () =>
            call<{ id: string; status: string }>('POST', '/api/orders', {
              token,
              body: { item_id: itemId, quantity: 1 },
            }),
          ),
        )
        const acceptedMs = performance.now() - startedMs
        const unexpected = answers.filter((answer) => answer.status !== 202)
        assert.deepEqual(unexpected, [], 'every order accepted')
        assert.ok(answers.every((answer) => answer.body.status === 'pending'))
        assert.equal(new Set(answers.map((answer) => answer.body.id)).size, 500)

        let lowestStock = 100
        const final = await waitFor(
          'no order pending',
          async () => {
            const now = await tally(container, itemId)
            lowestStock = Math.min(lowestStock, now.stock)
            assert.ok(now.stock >= 0, `stock went negative: ${now.stock}`)
            return now.pending === 0 ? now : undefined
          },
          45_000,
          100,
        )
        const settledMs = performance.now() - startedMs
        assert.deepEqual(final, { pending: 0, completed: 100, rejected: 400, other: 0, stock: 0 })
        assert.equal(lowestStock, 0)
        const item = await call<{ stock: number }>('GET', `/api/items/${itemId}`)
        assert.equal(item.body.stock, 0)
        for (const answer of answers.slice(0, 3)) {
          const order = await call<{ status: string }>('GET', `/api/orders/${answer.body.id}`, {
            token,
          })
          assert.ok(['completed', 'rejected'].includes(order.body.status))
        }

        // SIGTERM stops both cleanly, and each ran its share of the jobs.
        for (const run of workers) assert.equal(await terminate(run), 0, run.output())
        const runs = workers.map(
          (run) => run.output().match(/"task":"orders\.process".*"msg":"task run"/g)?.length ?? 0,
        )
        assert.ok(
          runs.every((count) => count > 0),
          `runs per worker: ${runs.join(', ')}`,
        )
        assert.ok((runs[0] ?? 0) + (runs[1] ?? 0) >= 500)
        t.diagnostic(
          `${dialect}: 500 orders accepted (202) in ${Math.round(acceptedMs)} ms, all settled ${Math.round(settledMs)} ms after the first POST; jobs run per worker: ${runs.join(' + ')}`,
        )
      },
    )
  }
})
