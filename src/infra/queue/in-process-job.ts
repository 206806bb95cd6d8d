import type { StepOptions } from './task.ts'
import type { JobInput } from './workflow.ts'

/** BullMQ's job states, kept by the in-process runner. */
export type JobState =
  | 'delayed'
  | 'waiting'
  | 'waiting-children'
  | 'active'
  | 'completed'
  | 'failed'

/** One job of the in-process runner, as BullMQ keeps it in a Redis hash. */
export interface JobRecord {
  id: string
  name: string
  input: JobInput
  options: StepOptions
  state: JobState
  attemptsStarted: number
  attemptsMade: number
  result?: unknown
  error?: string
  /** Set when a child failed: the job fails without running, as in BullMQ. */
  deferredFailure?: string
  parentId?: string
  pendingChildren: number
  childResults: Map<string, unknown>
  finishedAt?: number
  /** Order among ready jobs of equal priority. */
  seq: number
  timer?: NodeJS.Timeout
}

/** Ready jobs in BullMQ's order: no priority first, then by priority; first in, first out. */
export class ReadyHeap {
  readonly #items: JobRecord[] = []

  push(record: JobRecord): void {
    const items = this.#items
    items.push(record)
    let index = items.length - 1
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (!before(items[index] as JobRecord, items[parent] as JobRecord)) break
      ;[items[index], items[parent]] = [items[parent] as JobRecord, items[index] as JobRecord]
      index = parent
    }
  }

  pop(): JobRecord | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || !last) return top
    items[0] = last
    let index = 0
    for (;;) {
      const left = index * 2 + 1
      const right = left + 1
      let smallest = index
      if (left < items.length && before(items[left] as JobRecord, items[smallest] as JobRecord))
        smallest = left
      if (right < items.length && before(items[right] as JobRecord, items[smallest] as JobRecord))
        smallest = right
      if (smallest === index) return top
      ;[items[index], items[smallest]] = [items[smallest] as JobRecord, items[index] as JobRecord]
      index = smallest
    }
  }
}

function before(a: JobRecord, b: JobRecord): boolean {
  const pa = a.options.priority ?? 0
  const pb = b.options.priority ?? 0
  if (pa !== pb) return pa === 0 || (pb !== 0 && pa < pb)
  return a.seq < b.seq
}
