import { type FlowJob, FlowProducer, type JobsOptions, Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { boundCommands } from '../redis/redis.ts'
import { toUnavailableError } from '../redis/redis-errors.ts'
import { BullMqScheduler } from './bullmq-scheduler.ts'
import { type BullMqSettings, jobOptions } from './bullmq-settings.ts'
import { BullMqTaskWorker } from './bullmq-task-worker.ts'
import type { Schedule, Scheduler } from './schedule.ts'
import type { SubmitOptions, TaskRef } from './task.ts'
import type {
  TaskBroker,
  TaskHandle,
  TaskLogger,
  TaskStatus,
  TaskWorker,
  TaskWorkerOptions,
} from './task-queue.ts'
import {
  assertTaskId,
  checkOptions,
  consoleTaskLogger,
  explainFailure,
  newTaskId,
  settlesWithin,
  toJson,
  traceOfCaller,
} from './task-runtime.ts'
import { type JobInput, type JobNode, planWorkflow, type Workflow } from './workflow.ts'

/**
 * Distributed mode: BullMQ on Redis. One BullMQ queue holds every task (the job name is the task
 * name); workflows are BullMQ flows, whose parent jobs wait for their children.
 */
export interface BullMqTaskBrokerOptions {
  /** redis://host:6379/0 (rediss:// for TLS). */
  url: string
  /** First part of every Redis key. Default `servekit`: use `${APP_NAME}`. */
  prefix?: string
  /** Default `tasks`. */
  queueName?: string
  /** How long finished tasks (and their results) stay visible. Default one day. */
  resultTtlMs?: number
  /**
   * How long a worker's claim on a running job lasts; it renews it every half of this. A worker
   * that dies (or whose event loop stays blocked this long) loses the job to another worker.
   * Default 30 s.
   */
  lockDurationMs?: number
  /** How often workers look for jobs whose lock has expired. Default 15 s. */
  stalledIntervalMs?: number
  /** Times a job may be taken back from a dead worker before it is failed. Default 2. */
  maxStalledCount?: number
  /** How long start-up waits for Redis. Default 5 s. */
  connectTimeoutMs?: number
  logger?: TaskLogger
}

export const DEFAULT_LOCK_DURATION_MS = 30_000
/**
 * A producer command (submit, status) without an answer within this bound fails. Longer than the
 * request-time connection's: a burst of a thousand submits on a loaded machine may rightly take
 * over half a second on one connection.
 */
export const PRODUCER_COMMAND_TIMEOUT_MS = 2000
/** The code of the AppError (kind 'unavailable', 503) a producer call fails with while Redis is away. */
export const QUEUE_UNAVAILABLE = 'QUEUE_UNAVAILABLE'
export const DEFAULT_STALLED_INTERVAL_MS = 15_000

/** Connects to Redis and resolves once BullMQ is ready; rejects if Redis does not answer. */
export async function createBullMqTaskBroker(
  options: BullMqTaskBrokerOptions,
): Promise<TaskBroker> {
  const broker = new BullMqTaskBroker(options)
  const timeoutMs = options.connectTimeoutMs ?? 5000
  try {
    // ioredis retries a refused connection forever: bound the wait, so start-up fails clearly.
    if (!(await settlesWithin(broker.ping(), timeoutMs)))
      throw new Error(`Redis (tasks) did not answer within ${timeoutMs} ms`)
    await broker.ping()
  } catch (error) {
    await broker.close()
    throw error
  }
  return broker
}

class BullMqTaskBroker implements TaskBroker {
  readonly kind = 'bullmq'
  readonly #settings: BullMqSettings
  readonly #connection: Redis
  readonly #queue: Queue
  readonly #flows: FlowProducer
  readonly #owned = new Set<{ close(): Promise<void> }>()
  #isClosed = false

  constructor(options: BullMqTaskBrokerOptions) {
    this.#settings = {
      url: options.url,
      prefix: options.prefix ?? 'servekit',
      queueName: options.queueName ?? 'tasks',
      resultTtlMs: options.resultTtlMs ?? 86_400_000,
      lockDurationMs: options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS,
      stalledIntervalMs: options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
      maxStalledCount: options.maxStalledCount ?? 2,
      logger: options.logger ?? consoleTaskLogger,
    }
    const { prefix, queueName, logger } = this.#settings
    // One connection serves the queue and the flow producer; only workers need blocking ones.
    // It fails fast, as the request-time connection does (infra/redis): while Redis is away a
    // submit rejects at once (no offline queue) or after the command timeout, which also drops
    // the connection, so a caller answers 503 instead of hanging for the outage.
    this.#connection = new Redis(options.url, {
      connectionName: `${prefix}:producer`,
      enableOfflineQueue: false,
      // In flight when the socket drops: fail now (503) rather than wait to be re-sent.
      maxRetriesPerRequest: 0,
    })
    boundCommands(this.#connection, PRODUCER_COMMAND_TIMEOUT_MS)
    this.#connection.on('error', (error) => logger.error({ err: error }, 'redis (tasks) error'))
    this.#queue = new Queue(queueName, { connection: this.#connection, prefix })
    this.#queue.on('error', (error) => logger.error({ err: error }, 'task queue error'))
    this.#flows = new FlowProducer({ connection: this.#connection, prefix })
    this.#flows.on('error', (error) => logger.error({ err: error }, 'task flow producer error'))
  }

  submit<P, R>(
    task: TaskRef<P, R>,
    payload: P,
    options: SubmitOptions = {},
  ): Promise<TaskHandle<R>> {
    return whileReachable(() => this.#submit(task, payload, options))
  }

  async #submit<P, R>(
    task: TaskRef<P, R>,
    payload: P,
    options: SubmitOptions,
  ): Promise<TaskHandle<R>> {
    if (options.id !== undefined) assertTaskId(options.id)
    const merged = { ...task.defaults, ...options }
    checkOptions(merged)
    const id = merged.id ?? newTaskId()
    const input: JobInput = { payload: toJson(payload), ...traceOfCaller() }
    await this.#queue.add(task.name, input, {
      ...jobOptions(merged, this.#settings.resultTtlMs),
      jobId: id,
      ...(merged.delayMs ? { delay: merged.delayMs } : {}),
    })
    return { id }
  }

  submitWorkflow<R>(workflow: Workflow<R>, options: { id?: string } = {}): Promise<TaskHandle<R>> {
    return whileReachable(() => this.#submitWorkflow(workflow, options))
  }

  async #submitWorkflow<R>(
    workflow: Workflow<R>,
    options: { id?: string },
  ): Promise<TaskHandle<R>> {
    if (options.id !== undefined) assertTaskId(options.id)
    const id = options.id ?? newTaskId()
    const plan = planWorkflow(workflow, id)
    const { queueName, resultTtlMs } = this.#settings
    const toFlow = (node: JobNode, isRoot: boolean): FlowJob => {
      checkOptions(node.options)
      const opts: JobsOptions = {
        ...jobOptions(node.options, resultTtlMs),
        jobId: node.id,
        // A failed step fails the step that waits for it, and so on up to the root.
        ...(isRoot ? {} : { failParentOnFailure: true }),
      }
      const data = 'payload' in node.input ? { payload: toJson(node.input.payload) } : node.input
      const job = { name: node.task, queueName, data, opts }
      return node.children.length === 0
        ? job
        : { ...job, children: node.children.map((child) => toFlow(child, false)) }
    }
    const flow = toFlow(plan, true)
    // BullMQ skips a root whose id exists but would still add its children again.
    if (await this.#queue.getJob(id)) return { id }
    await this.#flows.add(flow)
    return { id }
  }

  status<R = unknown>(task: TaskHandle<R> | string): Promise<TaskStatus<R> | undefined> {
    return whileReachable(() => this.#status(task))
  }

  async #status<R>(task: TaskHandle<R> | string): Promise<TaskStatus<R> | undefined> {
    const id = typeof task === 'string' ? task : task.id
    // The state first: a finished state is final, so the job read after it matches it.
    const state = await this.#queue.getJobState(id)
    if (state === 'unknown') return undefined
    const job = await this.#queue.getJob(id)
    if (!job?.id) return undefined
    if (job.finishedOn !== undefined && job.finishedOn + this.#settings.resultTtlMs <= Date.now())
      return undefined
    const status: TaskStatus<R> = {
      id,
      name: job.name,
      state: 'queued',
      attempts: job.attemptsStarted,
    }
    switch (state) {
      case 'active':
        status.state = 'running'
        break
      case 'completed':
        status.state = 'succeeded'
        status.result = job.returnvalue as R
        break
      case 'failed':
        status.state = 'failed'
        status.error = await explainFailure(job.failedReason ?? 'failed', async (childId) => {
          const child = await this.#queue.getJob(childId)
          return child ? { name: child.name, reason: child.failedReason ?? '' } : undefined
        })
        break
    }
    return status
  }

  createWorker(options: TaskWorkerOptions): TaskWorker {
    this.#assertOpen()
    const worker = new BullMqTaskWorker(this.#settings, options)
    this.#owned.add(worker)
    return worker
  }

  createScheduler(schedules: readonly Schedule[]): Scheduler {
    this.#assertOpen()
    const scheduler = new BullMqScheduler(this.#queue, schedules, this.#settings.resultTtlMs)
    this.#owned.add(scheduler)
    return scheduler
  }

  async ping(): Promise<void> {
    await this.#queue.waitUntilReady()
    await this.#connection.ping()
  }

  depth(): Promise<number> {
    return whileReachable(() => this.#depth())
  }

  async #depth(): Promise<number> {
    const counts = await this.#queue.getJobCounts(
      'waiting',
      'delayed',
      'prioritized',
      'waiting-children',
    )
    return Object.values(counts).reduce((sum, count) => sum + count, 0)
  }

  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    await Promise.all([...this.#owned].map((owned) => owned.close()))
    await Promise.allSettled([this.#queue.close(), this.#flows.close()])
    await this.#connection.quit().catch(() => this.#connection.disconnect())
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error('the task broker is closed')
  }
}

/**
 * Runs a producer call; a failure to reach Redis (refused, closed, timed out, not writeable while
 * reconnecting) becomes AppError 'unavailable' QUEUE_UNAVAILABLE (503). Anything else (bad
 * input, a Redis reply error) passes through unchanged.
 */
async function whileReachable<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    if (!isConnectionFailure(error)) throw error
    throw toUnavailableError(error, QUEUE_UNAVAILABLE, 'the task queue')
  }
}

const CONNECTION_FAILURE =
  /Command timed out|Stream isn't writeable|Connection is closed|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH/i

function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const { code } = error as { code?: unknown }
  return (
    CONNECTION_FAILURE.test(error.message) ||
    (typeof code === 'string' && CONNECTION_FAILURE.test(code))
  )
}
