import { AsyncLocalStorage } from 'node:async_hooks'
import type { JobRecord } from './in-process-job.ts'
import { PermanentTaskError, type TaskContext } from './task.ts'
import type { TaskLogger, TaskWorker, TaskWorkerOptions } from './task-queue.ts'
import { indexTasks, resolvePayload, runHandler, settlesWithin } from './task-runtime.ts'

/** What a worker needs from the in-process broker. */
export interface InProcessJobSource {
  /** Starts offering jobs to this worker (its pump() is called when jobs become ready). */
  attach(worker: InProcessTaskWorker): void
  detach(worker: InProcessTaskWorker): void
  /** The next job to run, now marked active, or undefined. */
  take(): JobRecord | undefined
  complete(record: JobRecord, result: unknown): void
  fail(record: JobRecord, error: unknown): void
}

/** A worker of the in-process broker: runs ready jobs, at most `concurrency` at once. */
export class InProcessTaskWorker implements TaskWorker {
  readonly #broker: InProcessJobSource
  readonly #tasks
  readonly #options: TaskWorkerOptions
  readonly #logger: TaskLogger
  readonly #concurrency: number
  readonly #running = new Map<JobRecord, { controller: AbortController; done: Promise<void> }>()
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new'
  #closing: Promise<void> | undefined
  #isPumpScheduled = false
  /**
   * Runs a function in the async context of start(), so that tasks do not inherit the request
   * context of whoever submitted them (a BullMQ worker would not see it either).
   */
  #inWorkerContext: <T>(fn: () => T) => T = (fn) => fn()

  constructor(broker: InProcessJobSource, options: TaskWorkerOptions, logger: TaskLogger) {
    this.#broker = broker
    this.#tasks = indexTasks(options.tasks)
    this.#options = options
    this.#logger = options.logger ?? logger
    this.#concurrency = options.concurrency ?? 10
    if (!(Number.isInteger(this.#concurrency) && this.#concurrency >= 1))
      throw new TypeError(`concurrency must be an integer >= 1, got ${this.#concurrency}`)
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('a worker starts once')
    await this.#options.onStart?.()
    this.#inWorkerContext = AsyncLocalStorage.snapshot()
    this.#state = 'running'
    this.#broker.attach(this)
    this.pump()
  }

  /** Takes ready jobs up to the concurrency, on a later turn: never inside the submitter's call. */
  pump(): void {
    if (this.#isPumpScheduled || this.#state !== 'running') return
    this.#isPumpScheduled = true
    setImmediate(() => {
      this.#isPumpScheduled = false
      this.#inWorkerContext(() => this.#takeJobs())
    })
  }

  #takeJobs(): void {
    while (this.#state === 'running' && this.#running.size < this.#concurrency) {
      const record = this.#broker.take()
      if (!record) return
      const controller = new AbortController()
      const done = this.#run(record, controller.signal).finally(() => {
        this.#running.delete(record)
        this.pump()
      })
      this.#running.set(record, { controller, done })
    }
  }

  async #run(record: JobRecord, signal: AbortSignal): Promise<void> {
    const context: TaskContext = {
      id: record.id,
      name: record.name,
      attempt: record.attemptsStarted,
      signal,
    }
    try {
      if (record.deferredFailure) throw new PermanentTaskError(record.deferredFailure)
      const payload = resolvePayload(record.input, record.childResults)
      const result = await runHandler(
        this.#tasks,
        record.name,
        payload,
        context,
        record.input.trace,
      )
      this.#broker.complete(record, result)
    } catch (error) {
      this.#logger.warn(
        { err: error, task: record.name, task_id: record.id, attempt: context.attempt },
        'task try failed',
      )
      this.#broker.fail(record, error)
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const wasStarted = this.#state === 'running'
    this.#state = 'closing'
    this.#broker.detach(this)
    if (this.#running.size > 0) {
      const graceMs = this.#options.graceMs ?? 10_000
      const running = Promise.allSettled([...this.#running.values()].map(({ done }) => done))
      if (!(await settlesWithin(running, graceMs))) {
        this.#logger.warn(
          { running: this.#running.size, graceMs },
          'grace period over: abandoning running tasks',
        )
        for (const { controller } of this.#running.values())
          controller.abort(new Error('worker closed'))
      }
    }
    this.#state = 'closed'
    if (wasStarted) await this.#options.onStop?.()
  }
}
