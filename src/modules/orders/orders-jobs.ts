import {
  type AnyTaskDefinition,
  defineTask,
  PermanentTaskError,
  taskRef,
} from '../../infra/queue/index.ts'
import type { OrderPublic, RejectionReason } from './orders-schemas.ts'

export interface ProcessOrderPayload {
  order_id: string
}

export interface ProcessOrderResult {
  order_id: string
  status: OrderPublic['status']
  reason?: RejectionReason
  /** True when an earlier run had already settled the order: this one changed nothing. */
  repeated: boolean
}

/**
 * `orders.process`: settles one order (deducts its stock, or rejects it). Retried with backoff
 * when the database fails (a deadlock victim, a lost connection); running it again after it
 * succeeded changes nothing (see settleIn in orders-repository.ts).
 */
export const processOrder = taskRef<ProcessOrderPayload, ProcessOrderResult>('orders.process', {
  attempts: 5,
  backoff: { type: 'exponential', delayMs: 500 },
})

/**
 * The task id of an order's job: one per order, so a second hand-off of the same order (the fast
 * path and the outbox sweep racing) enqueues nothing. Task ids may not be all digits (BullMQ
 * keeps those for its own ids), hence the prefix.
 */
export function orderTaskId(orderId: string): string {
  return `order-${orderId}`
}

/** What the outbox holds for an order: the order, and the task id it was last handed off as. */
export interface OrderMessage {
  order_id: string
  task_id: string
}

export const ORDER_TOPIC = processOrder.name

export function parseOrderMessage(payload: string): OrderMessage | undefined {
  try {
    const message = JSON.parse(payload) as Partial<OrderMessage>
    return typeof message.order_id === 'string' && typeof message.task_id === 'string'
      ? { order_id: message.order_id, task_id: message.task_id }
      : undefined
  } catch {
    return undefined
  }
}

/** The order tasks, bound to the service that does the work: the worker runs these. */
export function createOrderTasks(
  orders: { process(orderId: string): Promise<ProcessOrderResult> },
  /** Counts settled orders by status (a metric); repeated runs are not counted twice. */
  settled?: { inc(labels: { status: string }): void },
): AnyTaskDefinition[] {
  return [
    defineTask({
      name: processOrder.name,
      ...(processOrder.defaults ? { defaults: processOrder.defaults } : {}),
      handler: (payload: ProcessOrderPayload) => {
        if (typeof payload?.order_id !== 'string' || !/^\d{1,19}$/.test(payload.order_id))
          throw new PermanentTaskError(`bad orders.process payload: ${JSON.stringify(payload)}`)
        return orders.process(payload.order_id).then((result) => {
          if (!result.repeated && result.status !== 'pending')
            settled?.inc({ status: result.status })
          return result
        })
      },
    }),
  ]
}
