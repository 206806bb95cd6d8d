import type { TraceHeaders } from '../../shared/trace-context.ts'
import type { StepOptions, TaskRef } from './task.ts'

/**
 * Workflows, as in Celery: `chain` (each result is the next task's payload), `group` (tasks in
 * parallel, results collected in order) and `chord` (a group, then a callback given all the
 * results). They are plain data: both implementations turn them into the same tree of jobs,
 * where a job starts once its children have succeeded and fails when any of them fails.
 */

/** One task with its payload: a step of a group or chord, or the head of a chain. */
export interface TaskCall<R> {
  readonly task: string
  readonly payload: unknown
  readonly options: StepOptions
  /** Type-only: carries R; never set at runtime. */
  readonly __result?: R
}

interface NextStep {
  readonly task: string
  readonly options: StepOptions
}

export type Workflow<R> =
  | {
      readonly kind: 'chain'
      readonly first: TaskCall<unknown>
      readonly steps: readonly NextStep[]
      readonly __result?: R
    }
  | { readonly kind: 'group'; readonly calls: readonly TaskCall<unknown>[]; readonly __result?: R }
  | {
      readonly kind: 'chord'
      readonly calls: readonly TaskCall<unknown>[]
      readonly callback: NextStep
      readonly __result?: R
    }

/** A chain whose last result is R; `pipe` appends a task that takes R as its payload. */
export type Chain<R> = Extract<Workflow<R>, { kind: 'chain' }> & {
  pipe<N>(task: TaskRef<R, N>, options?: StepOptions): Chain<N>
}

/** The built-in task that returns the results of a group's members, in order. */
export const COLLECT_RESULTS_TASK = 'workflow.collect-results'

/** Most steps a workflow may have: every step is a job, and a chain nests one level per step. */
export const MAX_WORKFLOW_STEPS = 1000

/** A task with its payload, for a workflow. */
export function call<P, R>(task: TaskRef<P, R>, payload: P, options?: StepOptions): TaskCall<R> {
  return { task: task.name, payload, options: { ...task.defaults, ...options } }
}

/** Runs `first`, then passes each result as the payload of the next task added with `pipe`. */
export function chain<R>(first: TaskCall<R>): Chain<R> {
  return makeChain<R>(first, [])
}

function makeChain<R>(first: TaskCall<unknown>, steps: readonly NextStep[]): Chain<R> {
  return {
    kind: 'chain',
    first,
    steps,
    pipe<N>(task: TaskRef<R, N>, options?: StepOptions): Chain<N> {
      return makeChain<N>(first, [
        ...steps,
        { task: task.name, options: { ...task.defaults, ...options } },
      ])
    },
  }
}

/** Runs the calls in parallel; the result is the list of their results, in the calls' order. */
export function group<const Rs extends readonly unknown[]>(
  calls: {
    readonly [K in keyof Rs]: TaskCall<Rs[K]>
  },
): Workflow<{ -readonly [K in keyof Rs]: Rs[K] }> {
  assertMembers(calls)
  return { kind: 'group', calls: [...calls] }
}

/** Runs the calls in parallel, then `callback` with the list of their results. */
export function chord<const Rs extends readonly unknown[], R>(
  calls: { readonly [K in keyof Rs]: TaskCall<Rs[K]> },
  callback: TaskRef<{ -readonly [K in keyof Rs]: Rs[K] }, R>,
  options?: StepOptions,
): Workflow<R> {
  assertMembers(calls)
  return {
    kind: 'chord',
    calls: [...calls],
    callback: { task: callback.name, options: { ...callback.defaults, ...options } },
  }
}

function assertMembers(calls: readonly unknown[]): void {
  if (calls.length === 0) throw new TypeError('a group or chord needs at least one task')
  if (calls.length >= MAX_WORKFLOW_STEPS)
    throw new TypeError(`a workflow has at most ${MAX_WORKFLOW_STEPS} steps`)
}

/** Where a job's payload comes from: given, the one child's result, or the children's results. */
export type JobInput = (
  | { payload: unknown }
  | { from: 'child' }
  | { from: 'children'; childIds: string[] }
) & {
  /** The submitting request's trace (traceparent, X-Request-ID): the job's logs continue it. */
  trace?: TraceHeaders
}

/** One job of a workflow's tree; `children` run first. */
export interface JobNode {
  id: string
  task: string
  input: JobInput
  options: StepOptions
  children: JobNode[]
}

/**
 * The tree of jobs for a workflow whose final job gets `rootId`; every other job's id is
 * `<rootId>.<step>`, so submitting the same workflow id twice names the same jobs.
 * A chain nests: its last step is the root and each step is the child of the next.
 */
export function planWorkflow(workflow: Workflow<unknown>, rootId: string): JobNode {
  if (workflow.kind === 'chain') {
    if (workflow.steps.length >= MAX_WORKFLOW_STEPS)
      throw new TypeError(`a workflow has at most ${MAX_WORKFLOW_STEPS} steps`)
    const last = workflow.steps.length
    let node: JobNode = {
      id: last === 0 ? rootId : `${rootId}.0`,
      task: workflow.first.task,
      input: { payload: workflow.first.payload },
      options: workflow.first.options,
      children: [],
    }
    workflow.steps.forEach((step, index) => {
      node = {
        id: index + 1 === last ? rootId : `${rootId}.${index + 1}`,
        task: step.task,
        input: { from: 'child' },
        options: step.options,
        children: [node],
      }
    })
    return node
  }
  const children = workflow.calls.map<JobNode>((member, index) => ({
    id: `${rootId}.${index}`,
    task: member.task,
    input: { payload: member.payload },
    options: member.options,
    children: [],
  }))
  const input: JobInput = { from: 'children', childIds: children.map((child) => child.id) }
  return workflow.kind === 'group'
    ? { id: rootId, task: COLLECT_RESULTS_TASK, input, options: {}, children }
    : {
        id: rootId,
        task: workflow.callback.task,
        input,
        options: workflow.callback.options,
        children,
      }
}
