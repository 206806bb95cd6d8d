import type { Config } from '../config/index.ts'
import { ConfigError } from '../config/index.ts'
import type { Metrics } from '../infra/metrics/index.ts'
import {
  type AnyTaskDefinition,
  defineSchedule,
  defineTask,
  type Schedule,
  type Scheduler,
  type TaskBroker,
  type TaskLogger,
} from '../infra/queue/index.ts'
import { numberSum, oneTo } from './number-tasks.ts'
import { schedules } from './schedules.ts'

/** Something that runs beside a worker and feeds it (the order outbox sweep). */
export interface Sweeper {
  start(): void
  close(): Promise<void>
}

export interface WorkerLogger extends TaskLogger {
  debug(object: object, message: string): void
}

export interface BackgroundWorkDeps {
  broker: TaskBroker
  /** Every task a worker runs: the standalone ones and those built with their modules. */
  tasks: readonly AnyTaskDefinition[]
  /** The schedule table's scheduler, made by the broker (see scheduleTable). */
  scheduler: Scheduler
  /** Started with each worker, stopped before it. */
  sweepers: readonly Sweeper[]
  concurrency: number
  graceMs: number
  logger: WorkerLogger
  metrics?: Metrics
}

/** Lifecycle hooks of one worker: open what the tasks need, close it again. */
export interface WorkerHooks {
  onStart?: () => Promise<void> | void
  onStop?: () => Promise<void> | void
}

export interface RunningWorker {
  /** Stops the sweepers and taking tasks; running tasks get the grace period to finish. */
  close(): Promise<void>
}

export interface BackgroundWork {
  /** The schedule table's scheduler: list() for GET /api/schedules, start() where it runs. */
  readonly scheduler: Scheduler
  /** Starts a worker over every task, then the sweepers; resolves once it takes tasks. */
  startWorker(hooks?: WorkerHooks): Promise<RunningWorker>
}

/**
 * The worker bootstrap shared by the `worker` command and embedded `serve`: one worker running
 * every task at the configured concurrency, each run logged (debug) and timed
 * (`task_duration_seconds`), and the sweepers that feed it.
 */
export function createBackgroundWork(deps: BackgroundWorkDeps): BackgroundWork {
  const { broker, logger } = deps
  const durations = deps.metrics?.histogram({
    name: 'task_duration_seconds',
    help: 'Run time of background task tries, by task and outcome.',
    labelNames: ['task', 'outcome'] as const,
    buckets: [0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
  })
  const tasks = deps.tasks.map((task) =>
    defineTask({
      name: task.name,
      ...(task.defaults ? { defaults: task.defaults } : {}),
      handler: async (payload: unknown, context) => {
        const startedMs = performance.now()
        let outcome = 'failed'
        try {
          const result = await task.handler(payload, context)
          outcome = 'succeeded'
          return result
        } finally {
          const seconds = (performance.now() - startedMs) / 1000
          durations?.observe({ task: task.name, outcome }, seconds)
          logger.debug(
            { task: task.name, task_id: context.id, attempt: context.attempt, outcome, seconds },
            'task run',
          )
        }
      },
    }),
  )
  return {
    scheduler: deps.scheduler,
    async startWorker(hooks = {}) {
      const worker = broker.createWorker({
        tasks,
        concurrency: deps.concurrency,
        graceMs: deps.graceMs,
        logger,
        onStart: async () => {
          await hooks.onStart?.()
          logger.info(
            { kind: broker.kind, concurrency: deps.concurrency, tasks: tasks.map((t) => t.name) },
            'worker started',
          )
        },
        onStop: async () => {
          logger.info({ kind: broker.kind }, 'worker stopped')
          await hooks.onStop?.()
        },
      })
      await worker.start()
      for (const sweeper of deps.sweepers) sweeper.start()
      return {
        async close() {
          await Promise.all(deps.sweepers.map((sweeper) => sweeper.close()))
          await worker.close()
        },
      }
    },
  }
}

/** The id of the schedule SCHEDULE_TEST_INTERVAL_MS adds. */
export const TEST_SCHEDULE_ID = 'test_tick'

/**
 * The schedule table for this configuration: `schedules`, plus, when SCHEDULE_TEST_INTERVAL_MS
 * is set (tests only, refused in prod), `test_tick` running tasks.number-sum on 1..10 at that
 * interval, so tests can watch several schedulers fire for real within seconds.
 */
export function scheduleTable(
  config: Pick<Config, 'APP_ENV' | 'SCHEDULE_TEST_INTERVAL_MS'>,
): readonly Schedule[] {
  const everyMs = config.SCHEDULE_TEST_INTERVAL_MS
  if (everyMs === undefined) return schedules
  if (config.APP_ENV === 'prod')
    throw new ConfigError('SCHEDULE_TEST_INTERVAL_MS is for tests only: prod refuses it')
  return [
    ...schedules,
    defineSchedule({ id: TEST_SCHEDULE_ID, task: numberSum, payload: oneTo(10), everyMs }),
  ]
}
