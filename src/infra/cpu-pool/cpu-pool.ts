import { availableParallelism } from 'node:os'
import { Piscina } from 'piscina'
import { AppError } from '../../shared/errors.ts'
import type * as cpuTasks from './cpu-tasks.ts'

type Tasks = typeof cpuTasks
/** The names of the tasks cpu-tasks.ts exports. */
export type CpuTaskName = {
  [K in keyof Tasks]: Tasks[K] extends (input: never) => unknown ? K : never
}[keyof Tasks]
export type CpuTaskInput<K extends CpuTaskName> = Parameters<Tasks[K]>[0]
export type CpuTaskOutput<K extends CpuTaskName> = Awaited<ReturnType<Tasks[K]>>

export interface CpuPoolOptions {
  /** Worker threads at most; default: one less than the cores, at least 1. */
  maxThreads?: number
  /** Tasks waiting for a thread at most; past it run() fails with CPU_POOL_BUSY. Default 64. */
  maxQueue?: number
  /** An idle thread ends after this long; default 30 s. */
  idleTimeoutMs?: number
  /**
   * Added to the workers' nice value (Linux applies it per thread), so the event loop on the
   * main thread wins the CPU when both want it. Default 10; 0 turns it off.
   */
  niceIncrement?: number
}

export interface CpuPoolStats {
  threads: number
  queued: number
  completed: number
  /** Share of the pool's capacity used since it started, 0..1. */
  utilization: number
}

export interface CpuPool {
  /**
   * Runs a task of cpu-tasks.ts on a worker thread. Aborting the signal drops a queued task or
   * stops the thread running it (a new one takes its place).
   */
  run<K extends CpuTaskName>(
    name: K,
    input: CpuTaskInput<K>,
    options?: { signal?: AbortSignal },
  ): Promise<CpuTaskOutput<K>>
  stats(): CpuPoolStats
  /** Waits for running and queued tasks, then ends the threads. */
  close(): Promise<void>
}

/** The default thread count: leave a core to the event loop. */
export function defaultCpuThreads(): number {
  return Math.max(1, availableParallelism() - 1)
}

/** A worker-thread pool (piscina) for CPU-bound work that must not block the event loop. */
export function createCpuPool(options: CpuPoolOptions = {}): CpuPool {
  const maxThreads = options.maxThreads ?? defaultCpuThreads()
  if (!Number.isInteger(maxThreads) || maxThreads < 1)
    throw new TypeError(`maxThreads must be a positive integer, got ${maxThreads}`)
  const pool = new Piscina({
    filename: new URL('./cpu-tasks.ts', import.meta.url).href,
    minThreads: 0,
    maxThreads,
    maxQueue: options.maxQueue ?? 64,
    idleTimeout: options.idleTimeoutMs ?? 30_000,
    niceIncrement: options.niceIncrement ?? 10,
  })
  return {
    async run(name, input, runOptions = {}) {
      if (pool.queueSize >= pool.options.maxQueue) {
        throw new AppError('unavailable', 'CPU_POOL_BUSY', 'Too much work queued; try again later')
      }
      return pool.run(input, { name, signal: runOptions.signal ?? null })
    },
    stats() {
      return {
        threads: pool.threads.length,
        queued: pool.queueSize,
        completed: pool.completed,
        utilization: pool.utilization,
      }
    },
    async close() {
      await pool.close()
    },
  }
}
