import { type CronExpression, parseCron } from './cron.ts'
import type { StepOptions, TaskRef } from './task.ts'

/**
 * Schedules: a task to submit with a fixed payload, either every N milliseconds or on a cron
 * expression (UTC). Interval schedules fire on multiples of the interval since the Unix epoch
 * (every 15 minutes: :00, :15, :30, :45), so every replica and both modes agree on the times,
 * and each firing is one task whose id names the schedule and the time:
 * `repeat:<schedule id>:<epoch ms>` (BullMQ's own form).
 */
export interface Schedule<P = unknown> {
  /** Stable name, e.g. `number_sum`; renaming it makes a new schedule. */
  readonly id: string
  readonly task: TaskRef<P, unknown>
  readonly payload: P
  /** Interval form; exactly one of everyMs and cron is set. */
  readonly everyMs?: number
  /** Cron form, UTC. */
  readonly cron?: string
  /** Options of each firing's task (attempts, backoff, priority). */
  readonly options?: StepOptions
}

/** A schedule as GET /api/schedules shows it. */
export interface ScheduleInfo {
  id: string
  task: string
  everyMs?: number
  cron?: string
  /** When it fires next; undefined when it is not registered (distributed mode, before start). */
  nextRunAt: Date | undefined
}

/** Submits scheduled tasks on time. */
export interface Scheduler {
  /**
   * Registers the schedules and starts firing. In distributed mode this stores them as BullMQ
   * job schedulers (idempotent, so every replica may call it; schedulers no longer declared are
   * removed) and workers run the firings; in embedded mode it starts in-process timers.
   */
  start(): Promise<void>
  /** Each schedule with its next run time. */
  list(): Promise<ScheduleInfo[]>
  /** Stops firing (the registered BullMQ schedulers stay, for the other replicas). */
  close(): Promise<void>
}

const SCHEDULE_ID = /^[A-Za-z0-9_-]{1,100}$/

/** The shortest interval (tests run a 100-ms schedule; real ones are seconds or more apart). */
export const MIN_EVERY_MS = 100

/**
 * Declares a schedule, checking its id and its interval or cron expression; the payload's type
 * is checked against the task here, and the result fits any list of schedules.
 */
export function defineSchedule<P>(schedule: Schedule<P>): Schedule {
  if (!SCHEDULE_ID.test(schedule.id))
    throw new TypeError(`schedule id "${schedule.id}" must be letters, digits, "_" or "-"`)
  const hasEvery = schedule.everyMs !== undefined
  if (hasEvery === (schedule.cron !== undefined))
    throw new TypeError(`schedule ${schedule.id} needs exactly one of everyMs and cron`)
  if (
    hasEvery &&
    !(Number.isInteger(schedule.everyMs) && (schedule.everyMs as number) >= MIN_EVERY_MS)
  )
    throw new TypeError(`schedule ${schedule.id}: everyMs must be an integer >= ${MIN_EVERY_MS}`)
  if (schedule.cron !== undefined) parseCron(schedule.cron)
  return Object.freeze({ ...schedule }) as Schedule
}

/** Computes a schedule's firing times. */
export function scheduleClock(schedule: Schedule): { next(after: number): number | undefined } {
  if (schedule.everyMs !== undefined) {
    const every = schedule.everyMs
    return { next: (after) => Math.floor(after / every) * every + every }
  }
  const cron: CronExpression = parseCron(schedule.cron as string)
  return { next: (after) => cron.next(new Date(after))?.getTime() }
}

/** The id of the task one firing submits. */
export function firingId(scheduleId: string, atMs: number): string {
  return `repeat:${scheduleId}:${atMs}`
}

export function describeSchedule(schedule: Schedule, nextRunAt: Date | undefined): ScheduleInfo {
  return {
    id: schedule.id,
    task: schedule.task.name,
    ...(schedule.everyMs !== undefined ? { everyMs: schedule.everyMs } : {}),
    ...(schedule.cron !== undefined ? { cron: schedule.cron } : {}),
    nextRunAt,
  }
}
