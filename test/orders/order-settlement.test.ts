import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Container, createContainer } from '../../src/container/index.ts'
import {
  createInProcessTaskBroker,
  defineTask,
  PermanentTaskError,
} from '../../src/infra/queue/index.ts'
import { createItemsRepository } from '../../src/modules/items/items-repository.ts'
import {
  createOrderDispatcher,
  createOrdersRepository,
  ORDER_TOPIC,
  orderTaskId,
  STALE_SWEEPS,
} from '../../src/modules/orders/index.ts'
import { createUsersRepository } from '../../src/modules/users/users-repository.ts'
import { testConfig } from '../helpers/app.ts'
import { createTestDatabase, dialectCases } from '../helpers/db.ts'
import { waitFor } from './order-helpers.ts'

const silent = { info() {}, warn() {}, error() {} }

/** A container with no worker running (jobs wait in the in-process queue), a user and an item. */
async function setUp(t: { after(fn: () => Promise<void>): void }, url: string, stock: number) {
  const container = await createContainer(testConfig({ DATABASE_URL: url }), {
    runsEmbeddedWorkers: false,
  })
  t.after(() => container.close())
  const deps = { db: container.db.db, ids: container.ids }
  const user = await createUsersRepository(deps).create({ username: 'ann', password_hash: '!' })
  assert.ok(user)
  const item = await createItemsRepository(deps).create(
    { name: 'Mug', price: 5, description: null, stock },
    user.id,
  )
  return { container, userId: user.id, itemId: item.id }
}

async function stockOf(container: Container, itemId: string): Promise<number> {
  const row = await container.db.db
    .selectFrom('items')
    .select('stock')
    .where('id', '=', itemId)
    .executeTakeFirstOrThrow()
  return Number(row.stock)
}

async function outboxIds(container: Container): Promise<string[]> {
  const rows = await container.db.db.selectFrom('outbox').select('id').orderBy('id').execute()
  return rows.map((row) => row.id)
}

for (const { dialect, options } of await dialectCases()) {
  describe(`settling orders on ${dialect}`, options, () => {
    test('a job run three times at once deducts once; every run reports the final status', async (t) => {
      const url = await createTestDatabase(t, dialect)
      const { container, userId, itemId } = await setUp(t, url, 10)
      const { orders } = container.services
      for (const [round, quantity] of [3, 3, 5].entries()) {
        const { order } = await orders.place({ item_id: itemId, quantity }, userId)
        assert.deepEqual(await outboxIds(container), [order.id], 'the outbox holds the message')
        const runs = await Promise.all([1, 2, 3].map(() => orders.process(order.id)))
        const expected = round < 2 ? 'completed' : 'rejected'
        assert.deepEqual(
          runs.map((run) => run.status),
          [expected, expected, expected],
        )
        assert.deepEqual(runs.map((run) => run.repeated).sort(), [false, true, true])
        assert.deepEqual(await outboxIds(container), [], 'settling deletes the message')
      }
      assert.equal(await stockOf(container, itemId), 4, '10 - 3 - 3; the 5 did not fit')
    })

    test('many orders for one item at once: exactly the stock is sold, the rest rejected', async (t) => {
      const url = await createTestDatabase(t, dialect)
      const { container, userId, itemId } = await setUp(t, url, 5)
      const { orders } = container.services
      const placed = []
      for (let index = 0; index < 20; index++)
        placed.push((await orders.place({ item_id: itemId, quantity: 1 }, userId)).order)
      const results = await Promise.all(placed.map((order) => orders.process(order.id)))
      const completed = results.filter((result) => result.status === 'completed')
      const rejected = results.filter((result) => result.status === 'rejected')
      assert.equal(completed.length, 5)
      assert.equal(rejected.length, 15)
      assert.ok(rejected.every((result) => result.reason === 'insufficient_stock'))
      assert.equal(await stockOf(container, itemId), 0)
    })

    test('an item deleted before the job runs: the order is rejected with item_not_found', async (t) => {
      const url = await createTestDatabase(t, dialect)
      const { container, userId, itemId } = await setUp(t, url, 10)
      const { orders, items } = container.services
      const { order } = await orders.place({ item_id: itemId, quantity: 1 }, userId)
      await items.remove(itemId, userId)
      const result = await orders.process(order.id)
      assert.deepEqual(result, {
        order_id: order.id,
        status: 'rejected',
        reason: 'item_not_found',
        repeated: false,
      })
      const seen = await orders.get(order.id, userId)
      assert.equal(seen.status, 'rejected')
      assert.equal(seen.reason, 'item_not_found')
    })
  })
}

describe('the outbox sweep', () => {
  test('an order committed but never enqueued (a crash in between) is sent by the sweep and completed', async (t) => {
    const url = await createTestDatabase(t, 'sqlite')
    const { container, userId, itemId } = await setUp(t, url, 10)
    const repository = createOrdersRepository({ db: container.db.db, ids: container.ids })
    // What POST /api/orders commits, without the hand-off after the commit.
    const placed = await repository.place(
      { item_id: itemId, quantity: 2, idempotency_key: null },
      userId,
      (orderId) => ({
        topic: ORDER_TOPIC,
        payload: JSON.stringify({ order_id: orderId, task_id: orderTaskId(orderId) }),
      }),
    )
    assert.equal(placed.kind, 'placed')
    const orderId = placed.kind === 'placed' ? placed.order.id : ''
    assert.equal(await container.tasks.status(orderTaskId(orderId)), undefined, 'never enqueued')

    let nowMs = Date.now()
    const dispatcher = createOrderDispatcher({
      orders: repository,
      tasks: container.tasks,
      sweepSeconds: 1,
      isQueueDurable: true,
      logger: silent,
      now: () => nowMs,
    })
    assert.deepEqual(
      await dispatcher.sweep(),
      { sent: 0, resent: 0 },
      'too young: the fast path may still send it',
    )
    nowMs += 1500
    assert.deepEqual(await dispatcher.sweep(), { sent: 1, resent: 0 })
    assert.deepEqual(await dispatcher.sweep(), { sent: 0, resent: 0 }, 'stamped: sent once')
    assert.equal((await container.tasks.status(orderTaskId(orderId)))?.state, 'queued')

    // Long after, its job still waits in the queue: left alone.
    nowMs += STALE_SWEEPS * 1000 + 1000
    assert.deepEqual(await dispatcher.sweep(), { sent: 0, resent: 0 }, 'still queued: left alone')

    // A queue that lost its data (Redis without persistence) knows nothing of the job: resent.
    const emptied = await createInProcessTaskBroker({ logger: silent })
    t.after(() => emptied.close())
    const afterLoss = createOrderDispatcher({
      orders: repository,
      tasks: emptied,
      sweepSeconds: 1,
      isQueueDurable: true,
      logger: silent,
      now: () => nowMs,
    })
    const currentTaskId = async () => {
      const [message] = await container.db.db.selectFrom('outbox').select('payload').execute()
      return (JSON.parse(message?.payload ?? '{}') as { task_id: string }).task_id
    }
    nowMs += STALE_SWEEPS * 1000 + 1000
    assert.deepEqual(await afterLoss.sweep(), { sent: 0, resent: 1 })
    const resentId = await currentTaskId()
    assert.match(resentId, new RegExp(`^order-${orderId}-\\d+$`), 'a new id, kept in the message')
    assert.equal((await emptied.status(resentId))?.state, 'queued')

    // A job that failed all its tries keeps its id for the retention time: resent under a new id.
    const failing = emptied.createWorker({
      tasks: [
        defineTask({
          name: 'orders.process',
          handler: () => {
            throw new PermanentTaskError('database gone')
          },
        }),
      ],
    })
    await failing.start()
    await waitFor('job failed', async () =>
      (await emptied.status(resentId))?.state === 'failed' ? true : undefined,
    )
    await failing.close()
    nowMs += STALE_SWEEPS * 1000 + 1000
    assert.deepEqual(await afterLoss.sweep(), { sent: 0, resent: 1 })
    const retryId = await currentTaskId()
    assert.notEqual(retryId, resentId)
    assert.equal((await emptied.status(retryId))?.state, 'queued')

    const worker = await container.background.startWorker()
    t.after(() => worker.close())
    const order = await waitFor('order completed', async () => {
      const seen = await container.services.orders.get(orderId, userId)
      return seen.status === 'pending' ? undefined : seen
    })
    assert.equal(order.status, 'completed')
    assert.equal(await stockOf(container, itemId), 8)
    assert.deepEqual(await outboxIds(container), [])
  })

  test('after a restart in embedded mode, orders whose in-process jobs died with the old process run again', async (t) => {
    const url = await createTestDatabase(t, 'sqlite')
    const first = await setUp(t, url, 10)
    const { order } = await first.container.services.orders.place(
      { item_id: first.itemId, quantity: 4 },
      first.userId,
    )
    assert.equal(
      (await first.container.tasks.status(orderTaskId(order.id)))?.state,
      'queued',
      'handed off to the in-process queue',
    )
    await first.container.close()

    // A new process on the same database: its embedded worker's first sweep re-sends it.
    const second = await createContainer(testConfig({ DATABASE_URL: url }))
    t.after(() => second.close())
    const settled = await waitFor('order completed after the restart', async () => {
      const seen = await second.services.orders.get(order.id, first.userId)
      return seen.status === 'pending' ? undefined : seen
    })
    assert.equal(settled.status, 'completed')
    assert.equal(await stockOf(second, first.itemId), 6)
  })
})
