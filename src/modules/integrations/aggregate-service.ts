import type { HttpClient, HttpClientError } from '../../infra/http-client/index.ts'
import { AppError } from '../../shared/errors.ts'
import { firstAnswer, gatherWithDeadline, type Task } from '../../shared/parallel.ts'
import { noUpstreams, upstreamTimeout } from './integrations-errors.ts'
import type { NamedUpstream } from './upstream-config.ts'

export interface UpstreamAnswer {
  status: number
  data: unknown
}

export interface Aggregate {
  /** The upstreams that answered 2xx JSON in time. */
  results: Record<string, UpstreamAnswer>
  /** The upstreams that answered otherwise or could not be reached, and why. */
  failed: Record<string, { status: number; detail: string }>
  /** The upstreams still silent at the deadline (their calls are cancelled). */
  timed_out: string[]
  elapsed_ms: number
}

export interface Fastest extends UpstreamAnswer {
  upstream: string
  elapsed_ms: number
}

export type AggregateService = ReturnType<typeof createAggregateService>

/**
 * Calls several upstreams at once (GET, JSON): `gather` waits for all of them up to a deadline
 * and reports what arrived; `fastest` takes the first good answer and cancels the rest (hedged
 * requests to replicas or mirrors of the same data).
 */
export function createAggregateService(deps: {
  http: HttpClient
  upstreams: readonly NamedUpstream[]
}) {
  const { http, upstreams } = deps

  /** One upstream's call: resolves with a 2xx answer, rejects with the HttpClientError. */
  const callTask =
    (upstream: NamedUpstream, timeoutMs: number): Task<UpstreamAnswer> =>
    async (signal) => {
      // No retries: the deadline is the budget, and the other upstreams run meanwhile. The
      // deadline's own signal ends the call; the timeout is only a backstop behind it.
      const answer = await http.getJson(upstream.url, {
        signal,
        timeoutMs: timeoutMs + 1000,
        retries: 0,
      })
      if (!answer.ok) throw answer.error
      return { status: answer.status, data: answer.data }
    }

  return {
    async gather(deadlineMs: number): Promise<Aggregate> {
      const startedMs = performance.now()
      const tasks: Record<string, Task<UpstreamAnswer>> = {}
      for (const upstream of upstreams) tasks[upstream.name] = callTask(upstream, deadlineMs)
      const outcomes = await gatherWithDeadline(tasks, deadlineMs)
      const aggregate: Aggregate = { results: {}, failed: {}, timed_out: [], elapsed_ms: 0 }
      for (const [name, outcome] of Object.entries(outcomes)) {
        if (outcome.status === 'fulfilled') aggregate.results[name] = outcome.value
        else if (outcome.status === 'timed_out') aggregate.timed_out.push(name)
        else aggregate.failed[name] = describeFailure(outcome.reason)
      }
      aggregate.elapsed_ms = Math.round(performance.now() - startedMs)
      return aggregate
    },

    async fastest(deadlineMs: number): Promise<Fastest> {
      if (upstreams.length === 0) throw noUpstreams()
      const startedMs = performance.now()
      const deadline = AbortSignal.timeout(deadlineMs)
      try {
        const winner = await firstAnswer(
          upstreams.map((upstream) => async (signal: AbortSignal) => ({
            upstream: upstream.name,
            ...(await callTask(upstream, deadlineMs)(signal)),
          })),
          { signal: deadline },
        )
        return { ...winner, elapsed_ms: Math.round(performance.now() - startedMs) }
      } catch (error) {
        if (deadline.aborted) throw upstreamTimeout('every upstream', deadlineMs, error)
        const reasons = error instanceof AggregateError ? error.errors : [error]
        const detail = upstreams
          .map((upstream, index) => `${upstream.name}: ${describeFailure(reasons[index]).detail}`)
          .join('; ')
        throw new AppError(
          'upstream_failed',
          'AGGREGATE_ALL_FAILED',
          `Every upstream failed (${detail})`,
          {
            cause: error,
          },
        )
      }
    },
  }
}

/** Why an upstream gave nothing usable, without its internal address. */
function describeFailure(reason: unknown): { status: number; detail: string } {
  const error = reason as Partial<HttpClientError>
  switch (error.kind) {
    case 'http':
      return { status: error.status ?? 0, detail: `answered ${error.status}` }
    case 'timeout':
      return { status: 0, detail: 'timed out' }
    case 'network':
      return { status: 0, detail: 'unreachable' }
    case 'invalid_json':
      return { status: error.status ?? 0, detail: 'the answer is not JSON' }
    case 'too_large':
      return { status: error.status ?? 0, detail: 'the answer is too large' }
    default:
      return { status: 0, detail: 'cancelled' }
  }
}
