import type { JobsOptions } from 'bullmq'
import type { StepOptions } from './task.ts'
import type { TaskLogger } from './task-queue.ts'

/** The settings a worker and a scheduler of this broker share with it. */
export interface BullMqSettings {
  url: string
  prefix: string
  queueName: string
  resultTtlMs: number
  lockDurationMs: number
  stalledIntervalMs: number
  maxStalledCount: number
  logger: TaskLogger
}

/** BullMQ options for a job: retries, backoff, priority, and how long its result is kept. */
export function jobOptions(options: StepOptions, resultTtlMs: number): JobsOptions {
  // BullMQ removes finished jobs older than `age` (seconds) when later jobs finish; status()
  // hides them from the exact millisecond their time is over.
  const age = Math.max(1, Math.ceil(resultTtlMs / 1000))
  return {
    attempts: options.attempts ?? 1,
    ...(options.backoff
      ? { backoff: { type: options.backoff.type, delay: options.backoff.delayMs } }
      : {}),
    ...(options.priority ? { priority: options.priority } : {}),
    removeOnComplete: { age },
    removeOnFail: { age },
  }
}
