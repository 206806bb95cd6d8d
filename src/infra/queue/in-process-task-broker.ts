import { type JobRecord, ReadyHeap } from './in-process-job.ts'
import { InProcessScheduler } from './in-process-scheduler.ts'
import { type InProcessJobSource, InProcessTaskWorker } from './in-process-task-worker.ts'
import type { Schedule, Scheduler } from './schedule.ts'
import type { StepOptions, SubmitOptions, TaskRef } from './task.ts'
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
  backoffDelayMs,
  checkOptions,
  consoleTaskLogger,
  explainFailure,
  isPermanentFailure,
  newTaskId,
  toJson,
  traceOfCaller,
} from './task-runtime.ts'
import { type JobInput, type JobNode, planWorkflow, type Workflow } from './workflow.ts'

/**
 * The embedded task runner: BullMQ's job model (states, attempts, backoff, delay, priority,
 * parent jobs that wait for their children) kept in a Map, so that tasks, workflows and their
 * statuses behave as they do on Redis. What it cannot do is outlive the process: tasks not yet
 * finished when the process stops are lost (durable work, such as orders, must be re-enqueued
 * from the database at start-up).
 */
export interface InProcessTaskBrokerOptions {
  /** How long finished tasks (and their results) stay visible. Default one day. */
  resultTtlMs?: number
  logger?: TaskLogger
}

export const DEFAULT_RESULT_TTL_MS = 86_400_000

/** Creates the in-process broker (embedded mode). */
export async function createInProcessTaskBroker(
  options: InProcessTaskBrokerOptions = {},
): Promise<TaskBroker> {
  return new InProcessTaskBroker(options)
}

class InProcessTaskBroker implements TaskBroker, InProcessJobSource {
  readonly kind = 'in-process'
  readonly #ttlMs: number
  readonly #logger: TaskLogger
  readonly #jobs = new Map<string, JobRecord>()
  readonly #ready = new ReadyHeap()
  /** Started workers, which take jobs. */
  readonly #workers = new Set<InProcessTaskWorker>()
  /** Every worker made here, closed with the broker. */
  readonly #createdWorkers = new Set<InProcessTaskWorker>()
  readonly #schedulers = new Set<Scheduler>()
  readonly #sweeper: NodeJS.Timeout
  #seq = 0
  #isClosed = false

  constructor(options: InProcessTaskBrokerOptions) {
    this.#ttlMs = options.resultTtlMs ?? DEFAULT_RESULT_TTL_MS
    this.#logger = options.logger ?? consoleTaskLogger
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(this.#ttlMs, 60_000))
    this.#sweeper.unref()
  }

  async submit<P, R>(
    task: TaskRef<P, R>,
    payload: P,
    options: SubmitOptions = {},
  ): Promise<TaskHandle<R>> {
    if (options.id !== undefined) assertTaskId(options.id)
    return this.submitUnchecked(task.name, payload, { ...task.defaults, ...options })
  }

  /** Submits without checking the id's form: schedules use BullMQ's `repeat:<id>:<ms>` ids. */
  async submitUnchecked<R>(
    name: string,
    payload: unknown,
    options: SubmitOptions,
  ): Promise<TaskHandle<R>> {
    checkOptions(options)
    this.#assertOpen()
    const id = options.id ?? newTaskId()
    if (this.#find(id)) return { id }
    const record = this.#add(id, name, { payload: toJson(payload), ...traceOfCaller() }, options)
    this.#enqueue(record, options.delayMs ?? 0)
    return { id }
  }

  async submitWorkflow<R>(
    workflow: Workflow<R>,
    options: { id?: string } = {},
  ): Promise<TaskHandle<R>> {
    if (options.id !== undefined) assertTaskId(options.id)
    this.#assertOpen()
    const id = options.id ?? newTaskId()
    const plan = planWorkflow(workflow, id)
    checkTree(plan)
    if (this.#find(id)) return { id }
    const addNode = (node: JobNode, parentId?: string) => {
      const input = 'payload' in node.input ? { payload: toJson(node.input.payload) } : node.input
      const record = this.#add(node.id, node.task, input, node.options, parentId)
      if (node.children.length === 0) return this.#enqueue(record, 0)
      record.state = 'waiting-children'
      record.pendingChildren = node.children.length
      for (const child of node.children) addNode(child, node.id)
    }
    addNode(plan)
    return { id }
  }

  async status<R = unknown>(task: TaskHandle<R> | string): Promise<TaskStatus<R> | undefined> {
    const id = typeof task === 'string' ? task : task.id
    const record = this.#find(id)
    if (!record) return undefined
    const status: TaskStatus<R> = {
      id,
      name: record.name,
      state: STATES[record.state],
      attempts: record.attemptsStarted,
    }
    if (record.state === 'completed') status.result = record.result as R
    if (record.state === 'failed') {
      status.error = await explainFailure(record.error ?? 'failed', async (childId) => {
        const child = this.#find(childId)
        return child?.state === 'failed'
          ? { name: child.name, reason: child.error ?? '' }
          : undefined
      })
    }
    return status
  }

  createWorker(options: TaskWorkerOptions): TaskWorker {
    this.#assertOpen()
    const worker = new InProcessTaskWorker(this, options, this.#logger)
    this.#createdWorkers.add(worker)
    return worker
  }

  createScheduler(schedules: readonly Schedule[]): Scheduler {
    this.#assertOpen()
    const scheduler = new InProcessScheduler(
      schedules,
      async (schedule, id) => {
        await this.submitUnchecked(schedule.task.name, schedule.payload, {
          ...schedule.task.defaults,
          ...schedule.options,
          id,
        })
      },
      this.#logger,
    )
    this.#schedulers.add(scheduler)
    return scheduler
  }

  async ping(): Promise<void> {
    this.#assertOpen()
  }

  async depth(): Promise<number> {
    let waiting = 0
    for (const record of this.#jobs.values())
      if (record.state !== 'active' && record.state !== 'completed' && record.state !== 'failed')
        waiting++
    return waiting
  }

  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    await Promise.all([...this.#schedulers].map((scheduler) => scheduler.close()))
    await Promise.all([...this.#createdWorkers].map((worker) => worker.close()))
    clearInterval(this.#sweeper)
    for (const record of this.#jobs.values()) clearTimeout(record.timer)
  }

  // --- used by workers ---

  attach(worker: InProcessTaskWorker): void {
    this.#workers.add(worker)
  }

  detach(worker: InProcessTaskWorker): void {
    this.#workers.delete(worker)
  }

  take(): JobRecord | undefined {
    for (;;) {
      const record = this.#ready.pop()
      if (!record) return undefined
      if (record.state !== 'waiting' || this.#jobs.get(record.id) !== record) continue
      record.state = 'active'
      record.attemptsStarted++
      return record
    }
  }

  complete(record: JobRecord, result: unknown): void {
    record.attemptsMade++
    record.state = 'completed'
    record.result = result
    record.finishedAt = Date.now()
    const parent = record.parentId ? this.#jobs.get(record.parentId) : undefined
    if (parent?.state !== 'waiting-children') return
    parent.childResults.set(record.id, result)
    if (--parent.pendingChildren === 0) this.#makeReady(parent)
  }

  fail(record: JobRecord, error: unknown): void {
    record.attemptsMade++
    record.error = error instanceof Error ? error.message : String(error)
    if (!isPermanentFailure(error) && record.attemptsMade < (record.options.attempts ?? 1)) {
      this.#enqueue(record, backoffDelayMs(record.options, record.attemptsMade))
      return
    }
    record.state = 'failed'
    record.finishedAt = Date.now()
    const parent = record.parentId ? this.#jobs.get(record.parentId) : undefined
    if (parent?.state !== 'waiting-children') return
    // The words BullMQ uses, so that one explainFailure reads both.
    parent.deferredFailure = `child ${record.id} failed`
    this.#makeReady(parent)
  }

  // --- internals ---

  #add(
    id: string,
    name: string,
    input: JobInput,
    options: StepOptions,
    parentId?: string,
  ): JobRecord {
    const record: JobRecord = {
      id,
      name,
      input,
      options,
      state: 'waiting',
      attemptsStarted: 0,
      attemptsMade: 0,
      pendingChildren: 0,
      childResults: new Map(),
      seq: 0,
      ...(parentId ? { parentId } : {}),
    }
    this.#jobs.set(id, record)
    return record
  }

  #enqueue(record: JobRecord, delayMs: number): void {
    if (delayMs <= 0) {
      this.#makeReady(record)
      return
    }
    record.state = 'delayed'
    record.timer = setTimeout(() => {
      record.timer = undefined
      if (this.#jobs.get(record.id) === record && record.state === 'delayed')
        this.#makeReady(record)
    }, delayMs)
  }

  #makeReady(record: JobRecord): void {
    record.state = 'waiting'
    record.seq = ++this.#seq
    this.#ready.push(record)
    for (const worker of this.#workers) worker.pump()
  }

  /** The record for `id`, dropping it when its retention time is over. */
  #find(id: string): JobRecord | undefined {
    const record = this.#jobs.get(id)
    if (record?.finishedAt !== undefined && record.finishedAt + this.#ttlMs <= Date.now()) {
      this.#jobs.delete(id)
      return undefined
    }
    return record
  }

  #sweep(): void {
    const oldest = Date.now() - this.#ttlMs
    for (const [id, record] of this.#jobs)
      if (record.finishedAt !== undefined && record.finishedAt <= oldest) this.#jobs.delete(id)
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error('the task broker is closed')
  }
}

const STATES = {
  delayed: 'queued',
  waiting: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'succeeded',
  failed: 'failed',
} as const

function checkTree(node: JobNode): void {
  checkOptions(node.options)
  for (const child of node.children) checkTree(child)
}
