import type { CpuPool } from '../../infra/cpu-pool/index.ts'
import { AppError } from '../../shared/errors.ts'
import type { ComputeRequest, ComputeResult } from './compute-schemas.ts'

export type ComputeService = ReturnType<typeof createComputeService>

/** Runs CPU-bound tasks on the worker-thread pool, so the event loop keeps serving meanwhile. */
export function createComputeService({ cpu }: { cpu: CpuPool }) {
  return {
    /** Aborting `signal` stops the task (a queued one is dropped, a running thread ends). */
    async run(request: ComputeRequest, signal?: AbortSignal): Promise<ComputeResult> {
      const startedMs = performance.now()
      let result: string | number
      try {
        if (request.task === 'hash_chain') {
          const rounds = required(request.rounds, 'rounds', request.task)
          result = await cpu.run('hashChain', { seed: request.seed ?? '', rounds }, { signal })
        } else {
          const limit = required(request.limit, 'limit', request.task)
          result = await cpu.run('countPrimes', { limit }, { signal })
        }
      } catch (error) {
        if (signal?.aborted)
          throw new AppError('unavailable', 'COMPUTE_ABORTED', 'The computation was stopped', {
            cause: error,
          })
        throw error
      }
      return {
        task: request.task,
        result,
        elapsed_ms: Math.round(performance.now() - startedMs),
      }
    },
  }
}

function required<T>(value: T | undefined, field: string, task: string): T {
  if (value !== undefined) return value
  throw new AppError('invalid', 'VALIDATION_FAILED', `${field} is required for ${task}`, {
    details: [{ loc: ['body', field], msg: `Field required for task ${task}`, type: 'missing' }],
  })
}
