/**
 * Item 1: stock under concurrency. Three API processes and two worker processes on one database
 * and one Redis; orders race for one item's stock. Each test reads the database behind the
 * cluster's back: the stock while the orders settle (it must never go below zero) and the
 * outcome (exact counts; stock taken = quantities completed).
 */
import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import fc from 'fast-check'
import type { DialectName } from '../../src/infra/db/index.ts'
import { dialectOptions } from '../helpers/db.ts'
import { whenReachable } from '../helpers/services.ts'
import { expectFigure } from './figures.ts'
import {
  createItems,
  DIALECT_LABEL,
  type OrdersCluster,
  placeOrders,
  readOrders,
  readStocks,
  sampleStock,
  startOrdersCluster,
  stopGracefully,
  waitQueueDrained,
  waitSettled,
} from './orders-faults-helpers.ts'

const redis = await whenReachable('redis')
const DIALECTS: readonly DialectName[] = ['sqlite', 'mysql', 'postgres']
const cases = await Promise.all(
  DIALECTS.map(async (dialect) => {
    const database = await dialectOptions(dialect)
    return { dialect, options: { skip: redis.skip || database.skip, timeout: 240_000 } }
  }),
)

/** 500 single-unit orders at once for a stock of 100, spread over the API processes. */
async function fiveHundredOrders(t: TestContext, cluster: OrdersCluster): Promise<void> {
  const dialect = cluster.dialect
  const [itemId] = await createItems(cluster, [100])
  assert.ok(itemId)
  const sampler = sampleStock(cluster, itemId)
  const startedMs = performance.now()
  let acceptedMs = 0
  let settledMs = 0
  let sampled = { samples: 0, lowest: Number.NaN, failures: 0 }
  try {
    const orderIds = await placeOrders(
      cluster,
      Array.from({ length: 500 }, () => ({ item_id: itemId, quantity: 1 })),
    )
    acceptedMs = performance.now() - startedMs
    assert.equal(new Set(orderIds).size, 500)
    await waitSettled(cluster, 500, [itemId])
    settledMs = performance.now() - startedMs
  } finally {
    sampled = await sampler.stop()
  }
  const orders = await readOrders(cluster, [itemId])
  const stock = (await readStocks(cluster, [itemId])).get(itemId)
  const completed = orders.filter((order) => order.status === 'completed').length
  const rejected = orders.filter(
    (order) => order.status === 'rejected' && order.reason === 'insufficient_stock',
  ).length
  expectFigure(t, {
    item: 1,
    name: `500 single-unit orders for 100 units, ${DIALECT_LABEL[dialect]}, 3 API + 2 worker processes`,
    measured: `${completed} completed, ${rejected} rejected, stock ${stock}, lowest of ${sampled.samples} samples ${sampled.lowest}; accepted in ${(acceptedMs / 1000).toFixed(1)} s, settled in ${(settledMs / 1000).toFixed(1)} s${cluster.stats.retried ? `; ${cluster.stats.retried} POSTs retried after a 503` : ''}`,
    pass: 'exactly 100 completed, 400 rejected, stock 0, never negative',
    ok:
      orders.length === 500 &&
      completed === 100 &&
      rejected === 400 &&
      stock === 0 &&
      sampled.lowest >= 0 &&
      sampled.samples >= 10,
  })
  const counts = await waitQueueDrained(cluster)
  assert.equal(counts.completed, 500, JSON.stringify(counts))
  assert.equal(counts.failed, 0)
}

/**
 * 20 random runs: a start stock of 0 to 60 and 1 to 40 orders of 1 to 5 units at once; after
 * each, start stock = end stock + completed quantities, and no order rejected that the end
 * stock could still cover.
 */
async function randomRuns(t: TestContext, cluster: OrdersCluster): Promise<void> {
  let runs = 0
  let runsBalanced = 0
  let ordersPlaced = 0
  let ordersCompleted = 0
  let lastFailure = ''
  const property = fc.asyncProperty(
    fc.integer({ min: 0, max: 60 }),
    fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
    async (startStock, quantities) => {
      runs++
      const [itemId] = await createItems(cluster, [startStock])
      assert.ok(itemId)
      await placeOrders(
        cluster,
        quantities.map((quantity) => ({ item_id: itemId, quantity })),
      )
      await waitSettled(cluster, quantities.length, [itemId], 30_000)
      const orders = await readOrders(cluster, [itemId])
      const endStock = (await readStocks(cluster, [itemId])).get(itemId) ?? Number.NaN
      const sold = orders
        .filter((order) => order.status === 'completed')
        .reduce((sum, order) => sum + order.quantity, 0)
      const rejected = orders.filter((order) => order.status === 'rejected')
      ordersPlaced += orders.length
      ordersCompleted += orders.length - rejected.length
      const problems = [
        orders.length === quantities.length ? '' : `${orders.length} orders stored`,
        startStock === endStock + sold
          ? ''
          : `start ${startStock} != end ${endStock} + sold ${sold}`,
        endStock >= 0 ? '' : `stock ${endStock}`,
        // Stock only goes down: an order rejected for stock could not be covered at the end either.
        rejected.every(
          (order) => order.reason === 'insufficient_stock' && order.quantity > endStock,
        )
          ? ''
          : `an order was rejected though stock ${endStock} covers it`,
      ].filter(Boolean)
      if (problems.length > 0) {
        lastFailure = `start ${startStock}, quantities [${quantities.join(',')}]: ${problems.join('; ')}`
        return false
      }
      runsBalanced++
      return true
    },
  )
  const details = await fc.check(property, { numRuns: 20, endOnFailure: true })
  expectFigure(t, {
    item: 1,
    name: 'random runs (fast-check): start stock 0–60, 1–40 orders of 1–5 units, MariaDB, 3 API + 2 worker processes',
    measured: `${runsBalanced} of ${runs} runs balanced (${ordersPlaced} orders, ${ordersCompleted} completed; seed ${details.seed})${lastFailure ? `; ${lastFailure}` : ''}${details.errorInstance ? `; ${String(details.errorInstance)}` : ''}`,
    pass: '20 of 20 runs: start stock = end stock + completed quantities',
    ok: !details.failed && runs === 20 && runsBalanced === 20,
  })
  const counts = await waitQueueDrained(cluster)
  assert.equal(counts.failed, 0)
  assert.equal(counts.active, 0)
}

for (const { dialect, options } of cases)
  test(`stock on ${DIALECT_LABEL[dialect]}, 3 API + 2 worker processes`, options, async (t) => {
    const cluster = await startOrdersCluster(t, { dialect, apis: 3, workers: 2 })
    await t.test(
      '500 concurrent single-unit orders for 100 units: 100 completed, 400 rejected, stock 0, never negative',
      (sub) => fiveHundredOrders(sub, cluster),
    )
    if (dialect === 'mysql')
      await t.test(
        '20 random runs (fast-check), quantities 1 to 5: start = end + completed',
        (sub) => randomRuns(sub, cluster),
      )
    // Both workers stop cleanly (SIGTERM: exit 0).
    const codes = await Promise.all(cluster.workers.map((run) => stopGracefully(run)))
    assert.deepEqual(codes, [0, 0])
  })
