import type { TaskQueue } from '../../infra/queue/index.ts'
import {
  ORDER_TOPIC,
  type OrderMessage,
  orderTaskId,
  parseOrderMessage,
  processOrder,
} from './orders-jobs.ts'
import type { OrdersRepository, OutboxRow } from './orders-repository.ts'

export interface OrderDispatcherLogger {
  info(object: object, message: string): void
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

export interface OrderDispatcherDeps {
  orders: Pick<OrdersRepository, 'unsentBefore' | 'sentBefore' | 'markSent' | 'deleteMessage'>
  tasks: Pick<TaskQueue, 'submit' | 'status'>
  /** Sweep every this many seconds, sending messages unsent for this long. */
  sweepSeconds: number
  /**
   * False for the in-process queue, whose jobs die with the process: the first sweep then
   * checks the orders handed off before this process started at once (up to `batchSize`; any
   * more once they are stale), instead of waiting for them to turn stale.
   */
  isQueueDurable: boolean
  logger: OrderDispatcherLogger
  /** Messages read per query. Default 200. */
  batchSize?: number
  now?: () => number
}

export interface SweepReport {
  /** Messages the fast path never handed off, handed off now. */
  sent: number
  /** Long-pending orders whose job was lost or had failed, handed off again. */
  resent: number
}

/** Long-pending is this many sweep periods: far beyond a normal queue wait. */
export const STALE_SWEEPS = 6

export type OrderDispatcher = ReturnType<typeof createOrderDispatcher>

/**
 * The outbox's sender, run by workers (and by serve in embedded mode). Placing an order hands
 * its job to the queue right after the commit; this sweep is the safety net for what can go
 * wrong around that:
 *
 * 1. A message still unsent after `sweepSeconds` (the process died between commit and enqueue,
 *    or the queue was down) is handed off now and stamped. The job id is the order's, so a
 *    hand-off that races the fast path enqueues nothing twice.
 * 2. A message handed off more than STALE_SWEEPS periods ago whose order is still unsettled (the
 *    job deletes the message when it settles the order) is checked against the queue: a job the
 *    queue no longer knows (the in-process queue after a restart, Redis data loss) or one that
 *    failed all its tries is enqueued again under a new task id, recorded in the message; one
 *    still waiting or running is left alone. Each checked message is stamped again, so the next
 *    sweep looks at others.
 *
 * Any number of sweepers may run at once: everything they do is idempotent.
 */
export function createOrderDispatcher({
  orders,
  tasks,
  sweepSeconds,
  isQueueDurable,
  logger,
  batchSize = 200,
  now = Date.now,
}: OrderDispatcherDeps) {
  const periodMs = sweepSeconds * 1000
  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<unknown> | undefined
  let isStopped = true
  let isFirstSweep = true
  let lastErrorLogMs = 0

  const handOff = async (message: OrderMessage, taskId: string) => {
    await tasks.submit(processOrder, { order_id: message.order_id }, { id: taskId })
  }

  const sendUnsent = async (at: number): Promise<number> => {
    let sent = 0
    const rows = await orders.unsentBefore(ORDER_TOPIC, new Date(at - periodMs), batchSize)
    for (const row of rows) {
      const message = await readable(row)
      if (!message) continue
      await handOff(message, message.task_id)
      await orders.markSent(row.id, new Date(at))
      sent++
    }
    return sent
  }

  const resendStale = async (at: number): Promise<number> => {
    let resent = 0
    const cutoff = isFirstSweep && !isQueueDurable ? at + 1 : at - STALE_SWEEPS * periodMs
    const rows = await orders.sentBefore(ORDER_TOPIC, new Date(cutoff), batchSize)
    for (const row of rows) {
      const message = await readable(row)
      if (!message) continue
      const status = await tasks.status(message.task_id)
      if (status === undefined || status.state === 'failed') {
        // Under a new id: a failed job keeps its id for the retention time (and BullMQ may
        // still hold an expired one), so the old id would enqueue nothing.
        const retry = { ...message, task_id: `${orderTaskId(message.order_id)}-${at}` }
        await handOff(retry, retry.task_id)
        await orders.markSent(row.id, new Date(at), JSON.stringify(retry))
        resent++
      } else {
        await orders.markSent(row.id, new Date(at))
      }
    }
    return resent
  }

  /** A message this sweeper can send; anything else is logged and dropped. */
  const readable = async (row: OutboxRow): Promise<OrderMessage | undefined> => {
    const message = parseOrderMessage(row.payload)
    if (!message) {
      logger.error({ outbox_id: row.id }, 'unreadable order message dropped')
      await orders.deleteMessage(row.id)
    }
    return message
  }

  const dispatcher = {
    /** One pass over the outbox; resolves to what it handed off. */
    async sweep(): Promise<SweepReport> {
      const at = now()
      const sent = await sendUnsent(at)
      const resent = await resendStale(at)
      isFirstSweep = false
      if (sent + resent > 0) logger.info({ sent, resent }, 'outbox sweep handed off orders')
      return { sent, resent }
    },

    /** Sweeps now, then every `sweepSeconds`, until close(). */
    start(): void {
      if (!isStopped) return
      isStopped = false
      const tick = () => {
        sweeping = dispatcher
          .sweep()
          .catch((error: unknown) => {
            // A database or Redis outage fails every sweep: say so once a minute, not each time.
            if (now() - lastErrorLogMs < 60_000) return
            lastErrorLogMs = now()
            logger.warn({ err: error }, 'outbox sweep failed; retrying')
          })
          .finally(() => {
            sweeping = undefined
            if (!isStopped) timer = setTimeout(tick, periodMs).unref()
          })
      }
      tick()
    },

    /** Stops sweeping; resolves once a sweep under way has finished. */
    async close(): Promise<void> {
      isStopped = true
      clearTimeout(timer)
      await sweeping
    },
  }
  return dispatcher
}
