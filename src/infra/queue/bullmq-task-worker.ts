import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { isDatabaseUnavailable } from '../db/errors.ts'
import type { BullMqSettings } from './bullmq-settings.ts'
import type { TaskWorker, TaskWorkerOptions } from './task-queue.ts'
import {
  indexTasks,
  isPermanentFailure,
  NEVER_ABORTED,
  resolvePayload,
  runHandler,
  settlesWithin,
} from './task-runtime.ts'
import type { JobInput } from './workflow.ts'

/**
 * A BullMQ worker running the given tasks. Its lock on each running job is renewed while the job
 * runs; if the process dies, another worker's stalled-job check puts the job back in the queue
 * once the lock has expired (within lockDuration + 2 × stalledInterval), so tasks run at least
 * once: handlers that must not repeat an effect check for it (as orders do).
 */
/** How long a task that met a database outage waits before it runs again. */
export const OUTAGE_RETRY_MS = 1000

export class BullMqTaskWorker implements TaskWorker {
  readonly #settings: BullMqSettings
  readonly #options: TaskWorkerOptions
  readonly #tasks
  readonly #concurrency: number
  #worker: Worker | undefined
  #connection: Redis | undefined
  #running: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #outageLoggedAt = 0

  constructor(settings: BullMqSettings, options: TaskWorkerOptions) {
    this.#settings = settings
    this.#options = options
    this.#tasks = indexTasks(options.tasks)
    this.#concurrency = options.concurrency ?? 10
    if (!(Number.isInteger(this.#concurrency) && this.#concurrency >= 1))
      throw new TypeError(`concurrency must be an integer >= 1, got ${this.#concurrency}`)
  }

  async start(): Promise<void> {
    if (this.#worker || this.#closing) throw new Error('a worker starts once')
    const { url, prefix, queueName, lockDurationMs, stalledIntervalMs, maxStalledCount } =
      this.#settings
    const logger = this.#options.logger ?? this.#settings.logger
    await this.#options.onStart?.()
    // Workers block on Redis waiting for jobs: their commands must wait out a reconnect rather
    // than fail after a number of retries.
    this.#connection = new Redis(url, {
      maxRetriesPerRequest: null,
      connectionName: `${prefix}:worker`,
    })
    this.#connection.on('error', (error) => logger.error({ err: error }, 'redis (worker) error'))
    const worker = new Worker(
      queueName,
      (job: Job, token?: string, signal?: AbortSignal) => this.#process(job, token, signal),
      {
        connection: this.#connection,
        prefix,
        concurrency: this.#concurrency,
        autorun: false,
        lockDuration: lockDurationMs,
        stalledInterval: stalledIntervalMs,
        maxStalledCount,
      },
    )
    this.#worker = worker
    worker.on('error', (error) => logger.error({ err: error }, 'task worker error'))
    worker.on('failed', (job, error) =>
      logger.warn(
        { err: error, task: job?.name, task_id: job?.id, attempt: job?.attemptsStarted },
        'task try failed',
      ),
    )
    worker.on('stalled', (id) => logger.warn({ task_id: id }, 'task taken back from a dead worker'))
    this.#running = worker.run().catch((error: unknown) => {
      logger.error({ err: error }, 'task worker stopped')
    })
    await worker.waitUntilReady()
  }

  async #process(
    job: Job,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const input = job.data as JobInput
    const children = new Map<string, unknown>()
    if ('from' in input) {
      // Keys are `<prefix>:<queue>:<id>`; our ids have no colon.
      for (const [key, value] of Object.entries(await job.getChildrenValues()))
        children.set(key.slice(key.lastIndexOf(':') + 1), value)
    }
    const payload = resolvePayload(input, children)
    const context = {
      id: job.id as string,
      name: job.name,
      attempt: job.attemptsStarted,
      signal: signal ?? NEVER_ABORTED,
    }
    try {
      return await runHandler(this.#tasks, job.name, payload, context, input.trace)
    } catch (error) {
      if (isPermanentFailure(error)) throw new UnrecoverableError((error as Error).message)
      if (token && isDatabaseUnavailable(error)) {
        // An outage is not the task's fault: try again shortly without using up an attempt, so
        // a job that meets a database restart runs as soon as it is back, not after its last
        // retry is long spent.
        // Once per outage burst, not once per job and second.
        if (Date.now() - this.#outageLoggedAt > 10_000) {
          this.#outageLoggedAt = Date.now()
          const logger = this.#options.logger ?? this.#settings.logger
          logger.warn(
            { err: error, task: job.name, task_id: job.id },
            'database unavailable: tasks postponed until it answers',
          )
        }
        await job.moveToDelayed(Date.now() + OUTAGE_RETRY_MS, token)
        throw new DelayedError()
      }
      throw error
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const worker = this.#worker
    if (!worker) return
    const logger = this.#options.logger ?? this.#settings.logger
    const graceMs = this.#options.graceMs ?? 10_000
    // close() stops taking jobs and waits for the running ones; past the grace period their
    // signals are aborted and the connection dropped: their locks expire and another worker
    // runs them again.
    const closed = worker.close()
    let isClosed = await settlesWithin(closed, graceMs)
    if (!isClosed) {
      logger.warn({ graceMs }, 'grace period over: abandoning running tasks')
      worker.cancelAllJobs('worker closed')
      isClosed = await settlesWithin(closed, 1000)
      // A handler that ignores its signal would hold close() forever: drop BullMQ's own
      // connections too, so that nothing keeps the process alive.
      if (!isClosed) await worker.disconnect().catch(() => {})
    }
    if (isClosed) await this.#running
    await this.#connection?.quit().catch(() => this.#connection?.disconnect())
    await this.#options.onStop?.()
  }
}
