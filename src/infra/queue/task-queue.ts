import type { Schedule, Scheduler } from './schedule.ts'
import type { AnyTaskDefinition, SubmitOptions, TaskRef } from './task.ts'
import type { Workflow } from './workflow.ts'

/** Where a task is: waiting (delayed, or for its turn, its inputs or a retry), running, or done. */
export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed'

/** A submitted task or workflow; R is the type of its result. */
export interface TaskHandle<R = unknown> {
  readonly id: string
  /** Type-only: carries R; never set at runtime. */
  readonly __result?: R
}

/** What is known about a task or workflow; a workflow reports its final step. */
export interface TaskStatus<R = unknown> {
  id: string
  /** The task name (for a group, `workflow.collect-results`). */
  name: string
  state: TaskState
  /** Set when succeeded. */
  result?: R
  /** Set when failed: the message of the last try, or of the step that failed a workflow. */
  error?: string
  /** Tries started so far (0 while it has not run yet). */
  attempts: number
}

/**
 * Enqueues tasks and workflows and reports on them: the narrow interface services and routes
 * depend on. Two implementations pass one contract suite: BullMQ on Redis (distributed) and an
 * in-process runner (embedded).
 */
export interface TaskQueue {
  /** Enqueues one task; resolves once it is stored. */
  submit<P, R>(task: TaskRef<P, R>, payload: P, options?: SubmitOptions): Promise<TaskHandle<R>>
  /** Enqueues a chain, group or chord; the handle's status is that of the final result. */
  submitWorkflow<R>(workflow: Workflow<R>, options?: { id?: string }): Promise<TaskHandle<R>>
  /** The task's status, or undefined when the id is unknown or its result has expired. */
  status<R = unknown>(task: TaskHandle<R> | string): Promise<TaskStatus<R> | undefined>
}

/** A pino-compatible logger; workers report failed tries and infrastructure errors on it. */
export interface TaskLogger {
  info(object: object, message: string): void
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

export interface TaskWorkerOptions {
  /** The tasks this worker can run; a task with another name fails without retry. */
  tasks: readonly AnyTaskDefinition[]
  /** Tasks run at the same time by this worker. Default 10 (tasks mostly wait on I/O). */
  concurrency?: number
  /** On close, how long running tasks get to finish before they are abandoned. Default 10 s. */
  graceMs?: number
  /** Runs before the first task is taken (open the database and cache here). */
  onStart?: () => Promise<void> | void
  /** Runs after the last task has finished or been abandoned (close them here). */
  onStop?: () => Promise<void> | void
  logger?: TaskLogger
}

/** Runs tasks from the queue. */
export interface TaskWorker {
  /** Calls onStart, then starts taking tasks. */
  start(): Promise<void>
  /**
   * Stops taking tasks, lets running ones finish within the grace period, then aborts their
   * signals (in distributed mode another worker runs them again once their lock expires),
   * then calls onStop.
   */
  close(): Promise<void>
}

/**
 * The owner of a task system, held by the composition root: the queue, plus the workers and the
 * scheduler built on the same storage. Services get the `TaskQueue` part only.
 */
export interface TaskBroker extends TaskQueue {
  /** Which implementation this is, for logs and /ready. */
  readonly kind: 'bullmq' | 'in-process'
  createWorker(options: TaskWorkerOptions): TaskWorker
  /** A scheduler that submits the given schedules' tasks on time. */
  createScheduler(schedules: readonly Schedule[]): Scheduler
  /** Resolves when the backing store answers (for /ready); throws otherwise. */
  ping(): Promise<void>
  /** Tasks waiting to run: queued, delayed or waiting for their children (the queue depth). */
  depth(): Promise<number>
  /** Closes the workers and schedulers made here, then the connections. */
  close(): Promise<void>
}
