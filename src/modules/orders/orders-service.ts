import { PermanentTaskError, type TaskQueue } from '../../infra/queue/index.ts'
import { idempotencyKeyReused, orderItemNotFound, orderNotFound } from './orders-errors.ts'
import {
  ORDER_TOPIC,
  type OrderMessage,
  orderTaskId,
  type ProcessOrderResult,
  processOrder,
} from './orders-jobs.ts'
import type { OrderRow, OrdersRepository } from './orders-repository.ts'
import type {
  OrderAccepted,
  OrderCreate,
  OrderEvent,
  OrderPublic,
  RejectionReason,
} from './orders-schemas.ts'

/** Where status changes go (the container's pub/sub); subscribers stream them over SSE. */
export interface OrderEventSink {
  publish(channel: string, data: string): Promise<unknown>
}

/** Where failures that do not fail the caller are reported. */
export interface OrdersLogger {
  warn(object: object, message: string): void
}

export interface OrdersServiceDeps {
  orders: OrdersRepository
  tasks: Pick<TaskQueue, 'submit'>
  events?: OrderEventSink
  /** Drops an item's cached copy once its stock has changed. */
  forgetItem?: (itemId: string) => Promise<void>
  logger?: OrdersLogger
}

export type OrdersService = ReturnType<typeof createOrdersService>

/** The pub/sub channel of one order's status changes. */
export function orderChannel(orderId: string): string {
  return `orders:${orderId}`
}

/**
 * Order rules: a signed-in user places an order for an existing item and reads only their own
 * orders. Placing writes the order and its outbox message in one transaction and then hands the
 * job to the queue at once (the fast path); if that hand-off fails or the process dies first, the
 * outbox sweep (orders-dispatcher.ts) sends it, so no order is left pending for good. The job
 * settles the order (`process`) and announces the change.
 */
export function createOrdersService({
  orders,
  tasks,
  events,
  forgetItem,
  logger,
}: OrdersServiceDeps) {
  const publish = async (order: OrderRow) => {
    if (!events) return
    const event: OrderEvent = {
      id: order.id,
      status: order.status,
      ...(order.reason ? { reason: order.reason as RejectionReason } : {}),
      updated_at: order.updated_at,
    }
    try {
      await events.publish(orderChannel(order.id), JSON.stringify(event))
    } catch (error) {
      logger?.warn({ err: error, order_id: order.id }, 'order status change not published')
    }
  }

  const replay = (order: OrderRow, input: OrderCreate): OrderAccepted => {
    if (order.item_id !== input.item_id || order.quantity !== input.quantity)
      throw idempotencyKeyReused()
    return accepted(order)
  }

  return {
    /**
     * Places an order as pending and enqueues its job. With an idempotency key already used by
     * this user for the same item and quantity, answers that first order and writes nothing.
     */
    async place(
      input: OrderCreate,
      userId: string,
      idempotencyKey?: string,
    ): Promise<{ order: OrderAccepted; isReplay: boolean }> {
      const key = idempotencyKey ?? null
      if (key !== null) {
        const first = await orders.findByIdempotencyKey(userId, key)
        if (first) return { order: replay(first, input), isReplay: true }
      }
      const placed = await orders.place(
        { item_id: input.item_id, quantity: input.quantity, idempotency_key: key },
        userId,
        (orderId) => ({
          topic: ORDER_TOPIC,
          payload: JSON.stringify({
            order_id: orderId,
            task_id: orderTaskId(orderId),
          } satisfies OrderMessage),
        }),
      )
      if (placed.kind === 'item_not_found') throw orderItemNotFound()
      if (placed.kind === 'duplicate_key') {
        // A concurrent request with the same key won the race: answer with its order.
        const first = key === null ? undefined : await orders.findByIdempotencyKey(userId, key)
        if (!first) throw new Error('idempotency key taken, yet no order holds it')
        return { order: replay(first, input), isReplay: true }
      }
      const { order } = placed
      // Announced before the hand-off: the job's own announcement must come after this one.
      await publish(order)
      try {
        await tasks.submit(processOrder, { order_id: order.id }, { id: orderTaskId(order.id) })
        await orders.markSent(order.id, new Date())
      } catch (error) {
        logger?.warn(
          { err: error, order_id: order.id },
          'order not enqueued: the outbox sweep will',
        )
      }
      return { order: accepted(order), isReplay: false }
    },

    /** The order, when `userId` placed it; anyone else gets the same not-found as for no order. */
    async get(id: string, userId: string): Promise<OrderPublic> {
      const order = await orders.findOwned(id, userId)
      if (!order) throw orderNotFound()
      return toPublic(order)
    },

    /**
     * The job's work: settles the order in one transaction, then drops the item's cached copy and
     * announces the new status. A repeated run changes nothing but announces the status again
     * (a run that died after its commit may not have).
     */
    async process(orderId: string): Promise<ProcessOrderResult> {
      const settled = await orders.settle(orderId)
      if (settled.outcome === 'missing')
        throw new PermanentTaskError(`order ${orderId} does not exist`)
      const { order } = settled
      if (order.status === 'completed' && forgetItem) {
        try {
          await forgetItem(order.item_id)
        } catch (error) {
          logger?.warn({ err: error, item_id: order.item_id }, 'item cache not invalidated')
        }
      }
      if (order.status !== 'pending') await publish(order)
      return {
        order_id: order.id,
        status: order.status,
        ...(order.reason ? { reason: order.reason as RejectionReason } : {}),
        repeated: settled.outcome === 'unchanged',
      }
    },
  }
}

function accepted(order: OrderRow): OrderAccepted {
  return { id: order.id, item_id: order.item_id, quantity: order.quantity, status: 'pending' }
}

function toPublic(order: OrderRow): OrderPublic {
  return {
    id: order.id,
    item_id: order.item_id,
    quantity: order.quantity,
    status: order.status,
    ...(order.reason ? { reason: order.reason as RejectionReason } : {}),
    created_at: order.created_at,
    updated_at: order.updated_at,
  }
}
