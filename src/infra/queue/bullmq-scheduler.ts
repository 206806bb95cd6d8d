import type { Queue } from 'bullmq'
import { jobOptions } from './bullmq-settings.ts'
import { describeSchedule, type Schedule, type ScheduleInfo, type Scheduler } from './schedule.ts'
import type { JobInput } from './workflow.ts'

/**
 * Distributed mode's scheduler: each schedule is a BullMQ job scheduler, stored once in Redis
 * under the schedule's id. Upserting it is idempotent, so any number of replicas may start; the
 * firings are jobs with the id `repeat:<schedule id>:<time>`, and Redis refuses a second job
 * with the same id, so each firing runs once, on whichever worker takes it. BullMQ workers
 * create each next firing when they take the current one: schedules need running workers.
 */
export class BullMqScheduler implements Scheduler {
  readonly #queue: Queue
  readonly #schedules: readonly Schedule[]
  readonly #resultTtlMs: number

  constructor(queue: Queue, schedules: readonly Schedule[], resultTtlMs: number) {
    const ids = new Set<string>()
    for (const schedule of schedules) {
      if (ids.has(schedule.id)) throw new TypeError(`schedule ${schedule.id} is declared twice`)
      ids.add(schedule.id)
    }
    this.#queue = queue
    this.#schedules = schedules
    this.#resultTtlMs = resultTtlMs
  }

  async start(): Promise<void> {
    for (const schedule of this.#schedules) {
      const template = {
        name: schedule.task.name,
        data: { payload: schedule.payload } satisfies JobInput,
        opts: jobOptions({ ...schedule.task.defaults, ...schedule.options }, this.#resultTtlMs),
      }
      if (schedule.everyMs !== undefined) {
        const every = schedule.everyMs
        // Start on the next multiple of the interval (as embedded mode does) rather than now;
        // BullMQ only reads startDate when the scheduler is new, so replicas do not shift it.
        const startDate = Math.floor(Date.now() / every) * every + every
        await this.#queue.upsertJobScheduler(schedule.id, { every, startDate }, template)
      } else {
        await this.#queue.upsertJobScheduler(
          schedule.id,
          { pattern: schedule.cron as string, tz: 'UTC' },
          template,
        )
      }
    }
    // Schedules removed from the code stop firing.
    const declared = new Set(this.#schedules.map((schedule) => schedule.id))
    for (const stored of await this.#queue.getJobSchedulers(0, -1))
      if (!declared.has(stored.key)) await this.#queue.removeJobScheduler(stored.key)
  }

  async list(): Promise<ScheduleInfo[]> {
    const stored = new Map(
      (await this.#queue.getJobSchedulers(0, -1)).map((scheduler) => [scheduler.key, scheduler]),
    )
    return this.#schedules.map((schedule) => {
      const next = stored.get(schedule.id)?.next
      return describeSchedule(schedule, next ? new Date(next) : undefined)
    })
  }

  async close(): Promise<void> {
    // Nothing to stop: the schedulers live in Redis, driven by the workers.
  }
}
