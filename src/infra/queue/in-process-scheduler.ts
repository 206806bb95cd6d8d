import {
  describeSchedule,
  firingId,
  type Schedule,
  type ScheduleInfo,
  type Scheduler,
  scheduleClock,
} from './schedule.ts'
import type { TaskLogger } from './task-queue.ts'

/** Longest delay setTimeout accepts; longer waits re-arm. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * Embedded mode's scheduler: one timer per schedule. Each firing submits the task with the id
 * `repeat:<schedule id>:<time>`, so a firing is submitted once even if timers race; firings
 * missed while the process was busy or asleep are skipped, not caught up (as BullMQ does).
 */
export class InProcessScheduler implements Scheduler {
  readonly #schedules: readonly Schedule[]
  readonly #submit: (schedule: Schedule, id: string) => Promise<void>
  readonly #logger: TaskLogger
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #nextRun = new Map<string, number>()
  #isRunning = false

  constructor(
    schedules: readonly Schedule[],
    submit: (schedule: Schedule, id: string) => Promise<void>,
    logger: TaskLogger,
  ) {
    const ids = new Set<string>()
    for (const schedule of schedules) {
      if (ids.has(schedule.id)) throw new TypeError(`schedule ${schedule.id} is declared twice`)
      ids.add(schedule.id)
    }
    this.#schedules = schedules
    this.#submit = submit
    this.#logger = logger
  }

  async start(): Promise<void> {
    if (this.#isRunning) return
    this.#isRunning = true
    for (const schedule of this.#schedules) this.#arm(schedule, Date.now())
  }

  async list(): Promise<ScheduleInfo[]> {
    const now = Date.now()
    return this.#schedules.map((schedule) => {
      const next = this.#nextRun.get(schedule.id) ?? scheduleClock(schedule).next(now)
      return describeSchedule(schedule, next === undefined ? undefined : new Date(next))
    })
  }

  async close(): Promise<void> {
    this.#isRunning = false
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
    this.#nextRun.clear()
  }

  #arm(schedule: Schedule, after: number): void {
    const at = scheduleClock(schedule).next(after)
    if (at === undefined || !this.#isRunning) return
    this.#nextRun.set(schedule.id, at)
    this.#wait(schedule, at)
  }

  #wait(schedule: Schedule, at: number): void {
    const timer = setTimeout(
      () => {
        if (!this.#isRunning) return
        if (Date.now() < at) return this.#wait(schedule, at)
        this.#submit(schedule, firingId(schedule.id, at)).catch((error: unknown) => {
          this.#logger.error({ err: error, schedule: schedule.id }, 'scheduled task not submitted')
        })
        this.#arm(schedule, Math.max(at, Date.now()))
      },
      Math.min(at - Date.now(), MAX_TIMER_MS),
    )
    this.#timers.set(schedule.id, timer)
  }
}
