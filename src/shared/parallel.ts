/**
 * Calling several things at once: all of them under one deadline, or the first to answer.
 * Each task gets an AbortSignal and should pass it on (to fetch, undici, a query) so that work
 * nobody waits for any more stops instead of running on in the background.
 */

/** One unit of work; it should stop when `signal` aborts. */
export type Task<T> = (signal: AbortSignal) => Promise<T>

/** What became of one task by the deadline. */
export type Outcome<T> =
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; reason: unknown }
  | { status: 'timed_out' }

type Tasks = readonly Task<unknown>[] | Readonly<Record<string, Task<unknown>>>

/** The outcomes in the shape of the tasks: a tuple for a tuple, a record for a record. */
export type Outcomes<T extends Tasks> = {
  -readonly [K in keyof T]: T[K] extends Task<infer R> ? Outcome<R> : never
}

export interface ParallelOptions {
  /** Aborting it aborts every task still running. */
  signal?: AbortSignal
}

/** The reason given to tasks still running at the deadline. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError'
}

/** The reason given to tasks that lost to an earlier answer. */
export class SupersededError extends Error {
  override name = 'SupersededError'
}

/**
 * Runs every task at once and resolves after `deadlineMs` at the latest with what arrived:
 * fulfilled, rejected, or timed_out for those still running, whose signals are then aborted
 * (reason: DeadlineExceededError). Never rejects because of a task. Resolves early when all are
 * done. Tasks may be an array (or tuple) or a record, e.g. one entry per upstream.
 */
export async function gatherWithDeadline<const T extends Tasks>(
  tasks: T,
  deadlineMs: number,
  options: ParallelOptions = {},
): Promise<Outcomes<T>> {
  if (!(deadlineMs >= 0)) throw new RangeError(`deadlineMs must be >= 0, got ${deadlineMs}`)
  const entries = Object.entries(tasks) as Array<[string, Task<unknown>]>
  const outcomes = new Map<string, Outcome<unknown>>()
  const controllers = entries.map(() => linkedController(options.signal))

  let finishAll = () => {}
  const allSettled = new Promise<void>((resolve) => {
    finishAll = resolve
  })
  if (entries.length === 0) finishAll()
  entries.forEach(([key, task], index) => {
    const signal = (controllers[index] as AbortController).signal
    void runSafely(task, signal).then((outcome) => {
      if (outcomes.has(key)) return // settled after the deadline: nobody is listening
      outcomes.set(key, outcome)
      if (outcomes.size === entries.length) finishAll()
    })
  })

  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, deadlineMs)
  })
  await Promise.race([allSettled, deadline])
  clearTimeout(timer)

  const reason = new DeadlineExceededError(`no answer within ${deadlineMs} ms`)
  entries.forEach(([key], index) => {
    if (outcomes.has(key)) return
    outcomes.set(key, { status: 'timed_out' })
    ;(controllers[index] as AbortController).abort(reason)
  })
  for (const controller of controllers) controller.dispose()

  const shaped: Record<string, Outcome<unknown>> | Outcome<unknown>[] = Array.isArray(tasks)
    ? []
    : {}
  for (const [key] of entries)
    (shaped as Record<string, Outcome<unknown>>)[key] = outcomes.get(key) as Outcome<unknown>
  return shaped as Outcomes<T>
}

/**
 * Runs every task at once and resolves with the first one to succeed; the others' signals are
 * aborted then (reason: SupersededError). If all fail, rejects with an AggregateError of their
 * errors, like Promise.any.
 */
export async function firstAnswer<T>(
  tasks: readonly Task<T>[],
  options: ParallelOptions = {},
): Promise<T> {
  if (tasks.length === 0) throw new AggregateError([], 'firstAnswer needs at least one task')
  const controllers = tasks.map(() => linkedController(options.signal))
  try {
    return await Promise.any(
      tasks.map(async (task, index) => {
        const signal = (controllers[index] as AbortController).signal
        const value = await task(signal)
        const superseded = new SupersededError('another task answered first')
        controllers.forEach((controller, other) => {
          if (other !== index) controller.abort(superseded)
        })
        return value
      }),
    )
  } finally {
    for (const controller of controllers) controller.dispose()
  }
}

/** An AbortController that also aborts when `parent` does; dispose() unhooks it. */
function linkedController(parent: AbortSignal | undefined): AbortController & {
  dispose(): void
} {
  const controller = new AbortController() as AbortController & { dispose(): void }
  if (!parent) {
    controller.dispose = () => {}
    return controller
  }
  const onAbort = () => controller.abort(parent.reason)
  if (parent.aborted) onAbort()
  else parent.addEventListener('abort', onAbort, { once: true })
  controller.dispose = () => parent.removeEventListener('abort', onAbort)
  return controller
}

async function runSafely<T>(task: Task<T>, signal: AbortSignal): Promise<Outcome<T>> {
  try {
    return { status: 'fulfilled', value: await task(signal) }
  } catch (reason) {
    return { status: 'rejected', reason }
  }
}
