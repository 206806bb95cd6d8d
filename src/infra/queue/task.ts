/**
 * Typed task definitions. A task is a name (`<module>.<verb-noun>`) and a handler; the payload
 * and result types travel with the definition into `submit` and `status`.
 * Payloads and results cross a process boundary in distributed mode, so both must be JSON:
 * the in-process runner copies them through JSON too, so that both modes behave alike.
 */

/** How to wait between attempts: `exponential` waits delayMs, 2·delayMs, 4·delayMs, … */
export interface Backoff {
  type: 'exponential' | 'fixed'
  delayMs: number
}

/** Options of one execution of a task. */
export interface SubmitOptions {
  /**
   * Caller-chosen id for idempotent enqueueing: while a task with this id is known (queued,
   * running, or finished within the retention time), submitting it again returns the same task
   * and runs nothing. Letters, digits, `.`, `_` and `-`, at most 100, not all digits.
   */
  id?: string
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number
  /**
   * 1 (first) to 2_097_151 (last). Tasks without a priority run before prioritized ones, as
   * in BullMQ; among equals, first in first out.
   */
  priority?: number
  /** Total number of tries before the task is failed; 1 (the default) means no retry. */
  attempts?: number
  /** Wait between tries; without it a failed try is retried at once. */
  backoff?: Backoff
}

/** Options of a step inside a workflow: the workflow has the id, and steps start when ready. */
export type StepOptions = Omit<SubmitOptions, 'id' | 'delayMs'>

/** What a handler learns about the execution it serves. */
export interface TaskContext {
  /** The task id (the same across retries). */
  id: string
  name: string
  /** 1 on the first try, 2 on the first retry, … */
  attempt: number
  /** Aborted when the worker is forced to stop; long handlers should give up when it fires. */
  signal: AbortSignal
}

/** A task by name, enough to submit it: producers need not import the handler's dependencies. */
export interface TaskRef<P, R> {
  readonly name: string
  /** Options applied to every submission of this task, under the caller's own. */
  readonly defaults?: StepOptions
  /** Type-only: carries P and R; never set at runtime. */
  readonly __types?: (payload: P) => R
}

/** A task with its handler; workers run these. */
export interface TaskDefinition<P, R> extends TaskRef<P, R> {
  readonly handler: (payload: P, context: TaskContext) => Promise<R> | R
}

/** Any task definition, whatever its types: what a worker takes in its list. */
// biome-ignore lint/suspicious/noExplicitAny: handlers of any payload type belong in one list
export type AnyTaskDefinition = TaskDefinition<any, any>

const TASK_NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/

/**
 * Defines a task: `defineTask({ name: 'tasks.number-sum', handler: async (numbers: number[]) =>
 * sum })`. The payload type comes from the handler's first parameter.
 */
export function defineTask<P, R>(definition: {
  name: string
  handler: (payload: P, context: TaskContext) => Promise<R> | R
  defaults?: StepOptions
}): TaskDefinition<P, R> {
  assertTaskName(definition.name)
  return Object.freeze({ ...definition })
}

/** Names a task defined elsewhere, with its types, for code that only submits it. */
export function taskRef<P, R>(name: string, defaults?: StepOptions): TaskRef<P, R> {
  assertTaskName(name)
  return Object.freeze(defaults ? { name, defaults } : { name })
}

function assertTaskName(name: string): void {
  if (!TASK_NAME.test(name))
    throw new TypeError(`task name "${name}" must read <module>.<verb-noun>, e.g. tasks.number-sum`)
}

/**
 * Thrown by a handler when retrying cannot help (bad input, a rule that will not change):
 * the task fails at once, whatever attempts are left.
 */
export class PermanentTaskError extends Error {
  override name = 'PermanentTaskError'
}
