import { createInProcessTaskBroker } from './in-process-task-broker.ts'
import type { TaskBroker, TaskLogger } from './task-queue.ts'

export interface TaskBrokerOptions {
  /** Set: BullMQ on this Redis; unset: the in-process runner. */
  redisUrl?: string
  /** Redis key prefix (BullMQ mode); use APP_NAME. Default `servekit`. */
  prefix?: string
  /** How long finished tasks and their results stay visible. Default one day. */
  resultTtlMs?: number
  /** BullMQ mode: lock on a running job, renewed at half this. Default 30 s. */
  lockDurationMs?: number
  /** BullMQ mode: how often workers look for jobs of dead workers. Default 15 s. */
  stalledIntervalMs?: number
  logger?: TaskLogger
}

/** Opens the task broker the configuration asks for: BullMQ with a Redis URL, else in-process. */
export async function createTaskBroker(options: TaskBrokerOptions): Promise<TaskBroker> {
  const { redisUrl, ...rest } = options
  // The BullMQ broker (BullMQ and ioredis) is loaded only when it is used: embedded mode never
  // pays for it. For the same reason it is not in this folder's index; import it by its file.
  if (redisUrl) {
    const { createBullMqTaskBroker } = await import('./bullmq-task-broker.ts')
    return createBullMqTaskBroker({ ...rest, url: redisUrl })
  }
  return createInProcessTaskBroker({
    ...(rest.resultTtlMs !== undefined ? { resultTtlMs: rest.resultTtlMs } : {}),
    ...(rest.logger ? { logger: rest.logger } : {}),
  })
}
