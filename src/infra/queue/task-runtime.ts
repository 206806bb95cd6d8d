import { randomUUID } from 'node:crypto'
import { AppError, isAppError } from '../../shared/errors.ts'
import { currentTraceHeaders, runInTrace, type TraceHeaders } from '../../shared/trace-context.ts'
import type { AnyTaskDefinition, StepOptions, SubmitOptions, TaskContext } from './task.ts'
import { PermanentTaskError } from './task.ts'
import { COLLECT_RESULTS_TASK, type JobInput } from './workflow.ts'

/**
 * The parts both implementations share, so that they cannot drift: id rules, option checks,
 * JSON copies, how a job's payload is found, how a handler is run, and how a failed workflow
 * names the step that failed it.
 */

/** BullMQ's own limit for priorities. */
export const MAX_PRIORITY = 2_097_151
const TASK_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/

/** Checks a caller-given id; BullMQ refuses integers (its own ids) and colons (its key separator). */
export function assertTaskId(id: string): void {
  if (!TASK_ID.test(id) || /^\d+$/.test(id)) {
    throw new AppError(
      'invalid',
      'TASKS_INVALID_ID',
      'a task id is 1 to 100 letters, digits, ".", "_" or "-", not all digits',
    )
  }
}

export function newTaskId(): string {
  return randomUUID()
}

/** Checks submit or step options; a bad one is the caller's bug, so it throws TypeError. */
export function checkOptions(options: SubmitOptions): void {
  const { delayMs, priority, attempts, backoff } = options
  if (delayMs !== undefined && !(Number.isFinite(delayMs) && delayMs >= 0))
    throw new TypeError(`delayMs must be a number >= 0, got ${delayMs}`)
  if (
    priority !== undefined &&
    !(Number.isInteger(priority) && priority >= 1 && priority <= MAX_PRIORITY)
  )
    throw new TypeError(`priority must be an integer from 1 to ${MAX_PRIORITY}, got ${priority}`)
  if (attempts !== undefined && !(Number.isInteger(attempts) && attempts >= 1))
    throw new TypeError(`attempts must be an integer >= 1, got ${attempts}`)
  if (
    backoff !== undefined &&
    (!['exponential', 'fixed'].includes(backoff.type) ||
      !(Number.isFinite(backoff.delayMs) && backoff.delayMs >= 0))
  )
    throw new TypeError('backoff must be { type: "exponential" | "fixed", delayMs: >= 0 }')
}

/** The wait before the next try after `attemptsMade` failed tries (BullMQ's formula). */
export function backoffDelayMs(options: StepOptions, attemptsMade: number): number {
  const backoff = options.backoff
  if (!backoff) return 0
  return backoff.type === 'fixed'
    ? backoff.delayMs
    : Math.round(2 ** (attemptsMade - 1) * backoff.delayMs)
}

/** A JSON copy: what a value becomes after a trip through Redis. `undefined` becomes null. */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null
  const text = JSON.stringify(value)
  return text === undefined ? null : JSON.parse(text)
}

/**
 * The payload a job's handler gets: the one it was given, the result of its only child (a chain
 * step), or its children's results in their order (a group or chord), from `children` by id.
 */
export function resolvePayload(input: JobInput, children: ReadonlyMap<string, unknown>): unknown {
  if ('payload' in input) return input.payload
  if (input.from === 'children') return input.childIds.map((id) => children.get(id) ?? null)
  if (children.size !== 1) throw new Error(`a chain step expects 1 result, got ${children.size}`)
  return children.values().next().value
}

/** Whether retrying cannot help: a PermanentTaskError, or an AppError about invalid input. */
export function isPermanentFailure(error: unknown): boolean {
  return error instanceof PermanentTaskError || (isAppError(error) && error.kind === 'invalid')
}

/** Runs the named task's handler (or the built-in collector) and returns its result as JSON. */
export async function runHandler(
  tasks: ReadonlyMap<string, AnyTaskDefinition>,
  name: string,
  payload: unknown,
  context: TaskContext,
  trace?: TraceHeaders,
): Promise<unknown> {
  if (name === COLLECT_RESULTS_TASK) return toJson(payload)
  const definition = tasks.get(name)
  if (!definition) throw new PermanentTaskError(`no handler for task ${name} in this worker`)
  let result: unknown
  try {
    // The handler runs in the submitting request's trace, so its log lines carry the same ids.
    result = await runInTrace(trace, () => definition.handler(payload, context))
  } catch (error) {
    // Something other than an Error has no message to record: make it one.
    throw error instanceof Error ? error : new Error(String(error))
  }
  return toJson(result)
}

export function indexTasks(tasks: readonly AnyTaskDefinition[]): Map<string, AnyTaskDefinition> {
  const byName = new Map<string, AnyTaskDefinition>()
  for (const task of tasks) {
    if (byName.has(task.name)) throw new TypeError(`task ${task.name} is defined twice`)
    byName.set(task.name, task)
  }
  return byName
}

const CHILD_FAILED = /^child (?:\S*:)?([^:\s]+) failed$/

/**
 * Turns BullMQ's "child <key> failed" (which both implementations record on a workflow job
 * whose step failed) into the failing step's own error: "step <id> (<task>) failed: <message>".
 */
export async function explainFailure(
  reason: string,
  lookup: (id: string) => Promise<{ name: string; reason: string } | undefined>,
): Promise<string> {
  let current = reason
  let step: { id: string; name: string } | undefined
  for (let depth = 0; depth < 100; depth++) {
    const match = CHILD_FAILED.exec(current)
    const id = match?.[1]
    if (!id) break
    const child = await lookup(id)
    if (!child) break
    step = { id, name: child.name }
    current = child.reason
  }
  return step ? `step ${step.id} (${step.name}) failed: ${current}` : current
}

/** A signal that never fires, for handlers run where nothing can abort them. */
export const NEVER_ABORTED = new AbortController().signal

/** Waits for `promise` to settle, at most `ms`: true if it settled (either way), false if not. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const settled = promise.then(
    () => true,
    () => true,
  )
  try {
    return await Promise.race([settled, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The logger used when none is given: errors still reach stderr. */
export const consoleTaskLogger = {
  info() {},
  warn() {},
  error(object: object, message: string) {
    console.error(message, object)
  },
}

/** The caller's trace headers for a job's input, or nothing outside a request. */
export function traceOfCaller(): { trace?: TraceHeaders } {
  const trace = currentTraceHeaders()
  return Object.keys(trace).length > 0 ? { trace } : {}
}
