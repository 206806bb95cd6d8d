import { defineSchedule, type Schedule } from '../infra/queue/index.ts'
import { numberSum, oneTo } from './number-tasks.ts'

/**
 * The schedule table (APScheduler's role). Interval schedules fire on multiples of the interval
 * since the epoch; cron schedules are UTC, e.g.
 * `defineSchedule({ id: 'nightly_report', task: report, payload: {}, cron: '0 3 * * *' })`.
 * Ids are stable names: renaming one makes a new schedule, and a removed one stops firing when
 * the next scheduler starts.
 */
export const schedules: readonly Schedule[] = [
  defineSchedule({
    id: 'number_sum',
    task: numberSum,
    payload: oneTo(100),
    everyMs: 15 * 60_000,
    options: { attempts: 3, backoff: { type: 'exponential', delayMs: 1000 } },
  }),
]
