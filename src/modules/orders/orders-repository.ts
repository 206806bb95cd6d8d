import { isUniqueViolation } from '../../infra/db/errors.ts'
import {
  createRepository,
  type RepositoryDeps,
  type Row,
  runInTransaction,
} from '../../infra/db/repository.ts'
import type { OrdersTable } from '../../infra/db/schema.ts'
import type { RejectionReason } from './orders-schemas.ts'

export type OrderRow = Row<OrdersTable>

/** What placing an order writes besides the order: its outbox message. */
export interface OutboxMessage {
  topic: string
  payload: string
}

export type PlaceResult =
  | { kind: 'placed'; order: OrderRow }
  /** The item does not exist or is deleted: nothing was written. */
  | { kind: 'item_not_found' }
  /** The creator already has an order with this idempotency key: nothing was written. */
  | { kind: 'duplicate_key' }

/**
 * What settling did: `completed` (stock deducted) or `rejected` (with a reason) when this run
 * moved the order out of pending; `unchanged` when it had already left pending (a repeated run);
 * `missing` when there is no such order.
 */
export type Settlement =
  | { outcome: 'completed' | 'unchanged'; order: OrderRow }
  | { outcome: 'rejected'; order: OrderRow; reason: RejectionReason }
  | { outcome: 'missing' }

/** An outbox row of one topic, as the dispatcher reads it. */
export interface OutboxRow {
  id: string
  payload: string
}

export interface OrdersRepository {
  /**
   * In ONE transaction: checks that the item is live, inserts the order (pending) and its outbox
   * message; the message's id is the order's id, so the job can delete it when it settles.
   */
  place(
    values: { item_id: string; quantity: number; idempotency_key: string | null },
    creatorId: string,
    message: (orderId: string) => OutboxMessage,
  ): Promise<PlaceResult>
  /** The order, if it exists and `creatorId` placed it. */
  findOwned(id: string, creatorId: string): Promise<OrderRow | undefined>
  findByIdempotencyKey(creatorId: string, key: string): Promise<OrderRow | undefined>
  /** Deducts the stock and completes the order, or rejects it; see the comment in the body. */
  settle(id: string): Promise<Settlement>
  /** Messages of `topic` never handed to the queue and older than `createdBefore`, oldest first. */
  unsentBefore(topic: string, createdBefore: Date, limit: number): Promise<OutboxRow[]>
  /** Messages of `topic` handed to the queue before `sentBefore` and still not settled. */
  sentBefore(topic: string, sentBefore: Date, limit: number): Promise<OutboxRow[]>
  /** Stamps a message as handed to the queue at `at` (and replaces its payload when given). */
  markSent(id: string, at: Date, payload?: string): Promise<void>
  /** Drops a message whose work is over (its order is gone). */
  deleteMessage(id: string): Promise<void>
}

/** Orders and their outbox messages. */
export function createOrdersRepository(deps: RepositoryDeps): OrdersRepository {
  const now = deps.now ?? (() => new Date())
  const orders = createRepository('orders', deps)

  return {
    async place(values, creatorId, message) {
      try {
        return await runInTransaction(deps.db, async (trx) => {
          // The foreign key stops an unknown item; a deleted one must be refused here.
          const item = await trx
            .selectFrom('items')
            .select('id')
            .where('id', '=', values.item_id)
            .where('deleted_at', 'is', null)
            .executeTakeFirst()
          if (!item) return { kind: 'item_not_found' } as const
          const order = await createRepository('orders', { ...deps, db: trx }).insert(
            { ...values, status: 'pending', reason: null },
            creatorId,
          )
          await trx
            .insertInto('outbox')
            .values({ id: order.id, ...message(order.id), created_at: now(), sent_at: null })
            .execute()
          return { kind: 'placed', order } as const
        })
      } catch (error) {
        // Two requests with one key raced: the unique index let the first one in.
        if (values.idempotency_key !== null && isUniqueViolation(error))
          return { kind: 'duplicate_key' }
        throw error
      }
    },

    findOwned: (id, creatorId) => orders.findById(id, { creatorId }),

    async findByIdempotencyKey(creatorId, key) {
      const [order] = await orders.list({ where: { idempotency_key: key }, creatorId, limit: 1 })
      return order
    },

    async settle(id) {
      const settled = await runInTransaction(deps.db, (trx) =>
        settleIn({ ...deps, db: trx }, id, now()),
      )
      if (settled) return settled
      // Not pending (or no such order): an earlier run settled it. Read it now, after the
      // commit: inside the transaction MySQL could still show the snapshot from before the wait.
      await deps.db.deleteFrom('outbox').where('id', '=', id).execute()
      const order = await orders.findById(id, { withDeleted: true })
      return order ? { outcome: 'unchanged', order } : { outcome: 'missing' }
    },

    async unsentBefore(topic, createdBefore, limit) {
      return deps.db
        .selectFrom('outbox')
        .select(['id', 'payload'])
        .where('sent_at', 'is', null)
        .where('topic', '=', topic)
        .where('created_at', '<', createdBefore)
        .orderBy('id')
        .limit(limit)
        .execute()
    },

    async sentBefore(topic, sentBefore, limit) {
      return deps.db
        .selectFrom('outbox')
        .select(['id', 'payload'])
        .where('sent_at', '<', sentBefore)
        .where('topic', '=', topic)
        .orderBy('sent_at')
        .orderBy('id')
        .limit(limit)
        .execute()
    },

    async markSent(id, at, payload) {
      await deps.db
        .updateTable('outbox')
        .set(payload === undefined ? { sent_at: at } : { sent_at: at, payload })
        .where('id', '=', id)
        .execute()
    },

    async deleteMessage(id) {
      await deps.db.deleteFrom('outbox').where('id', '=', id).execute()
    },
  }
}

/**
 * Settles one order inside the caller's transaction. A job may run twice (delivery is at least
 * once: a worker that dies mid-job, or whose lock lapses, leaves the job to another worker, and
 * both may be running it at once), so the order's status transition comes FIRST, as a
 * conditional update `status = 'completed' WHERE id = :id AND status = 'pending'`: only the run
 * whose update changes a row goes on to touch the stock. Why that holds on each database:
 *
 * - PostgreSQL (READ COMMITTED): a second UPDATE of the same row waits for the first
 *   transaction's row lock; when that commits, PostgreSQL re-checks the WHERE on the new row
 *   version (status is no longer 'pending') and updates nothing. If the first rolls back, the
 *   second proceeds as if it had been alone.
 * - MySQL/MariaDB (InnoDB, REPEATABLE READ): UPDATE is a locking "current read" of the latest
 *   committed row, not of the transaction's snapshot; it waits on the first run's row lock the
 *   same way and then sees 'completed'.
 * - SQLite: transactions start with BEGIN IMMEDIATE (see sqlite-dialect.ts), which takes the
 *   database's write lock up front, so settlements (across processes too) run one after another
 *   and each sees the last one's commit.
 *
 * The stock update is conditional too, `stock = stock - :q WHERE stock >= :q AND deleted_at IS
 * NULL`, also a locking current read on all three: concurrent orders for one item queue on its
 * row and stock can never go below zero. When it changes no row, the same transaction turns the
 * order to 'rejected' with the reason; nobody ever sees the 'completed' in between. Locks are
 * taken in one order (order row, item row, outbox row), so settlements cannot deadlock each
 * other. Last, the order's outbox message is deleted: its work is done.
 *
 * The claim is the transaction's first statement, before any plain SELECT: InnoDB takes a
 * REPEATABLE READ transaction's snapshot at its first plain read, so the reads after the claim
 * (the order, the item's state for the reason) see what the claim waited for, not older rows.
 * (A soft delete of the item committed in the instant between those reads and the stock update
 * would be reported as insufficient_stock: the order is rejected either way.)
 * Resolves to undefined when the claim changed nothing (settled before, or no such order).
 */
async function settleIn(
  deps: RepositoryDeps,
  id: string,
  at: Date,
): Promise<Exclude<Settlement, { outcome: 'unchanged' | 'missing' }> | undefined> {
  const trx = deps.db
  const orders = createRepository('orders', deps)
  const claimed = await trx
    .updateTable('orders')
    .set({ status: 'completed', updated_at: at })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .executeTakeFirst()
  if (claimed.numUpdatedRows === 0n) return undefined
  const order = await orders.findById(id, { withDeleted: true })
  if (!order) throw new Error(`order ${id} vanished inside its own transaction`)

  const deducted = await trx
    .updateTable('items')
    .set((eb) => ({ stock: eb('stock', '-', order.quantity), updated_at: at }))
    .where('id', '=', order.item_id)
    .where('stock', '>=', order.quantity)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  let reason: RejectionReason | undefined
  if (deducted.numUpdatedRows === 0n) {
    const item = await trx
      .selectFrom('items')
      .select('id')
      .where('id', '=', order.item_id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    reason = item ? 'insufficient_stock' : 'item_not_found'
    await trx
      .updateTable('orders')
      .set({ status: 'rejected', reason, updated_at: at })
      .where('id', '=', id)
      .execute()
  }
  await trx.deleteFrom('outbox').where('id', '=', id).execute()
  const settled = (await orders.findById(id, { withDeleted: true })) ?? order
  return reason === undefined
    ? { outcome: 'completed', order: settled }
    : { outcome: 'rejected', order: settled, reason }
}
