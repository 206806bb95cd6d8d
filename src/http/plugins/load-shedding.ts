import underPressure from '@fastify/under-pressure'
import type { Config } from '../../config/index.ts'
import type { Metrics } from '../../infra/metrics/index.ts'
import type { App } from '../server.ts'

type LoadSheddingSettings = Pick<
  Config,
  | 'LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS'
  | 'LOAD_SHED_MAX_HEAP_BYTES'
  | 'LOAD_SHED_MAX_RSS_BYTES'
  | 'LOAD_SHED_RETRY_AFTER_SECONDS'
>

/**
 * Routes that answer even under pressure: liveness (a restart would not help an overloaded
 * process, and would drop every request it holds) and metrics (overload is when they matter).
 * /ready is shed with the rest: failing it moves traffic to less loaded replicas.
 */
const NEVER_SHED = new Set(['/health', '/metrics'])

/**
 * Load shedding with @fastify/under-pressure: while the mean event-loop delay, the V8 heap or
 * the RSS is above its LOAD_SHED_* threshold (sampled every second), new requests get 503 with
 * Retry-After in the API's error shape at once, instead of queueing behind work the process
 * cannot finish in time. Each shed request is counted in `http_requests_shed_total{reason}`.
 * With every threshold at 0 nothing is registered.
 */
export async function registerLoadShedding(
  app: App,
  config: LoadSheddingSettings,
  metrics: Metrics,
): Promise<void> {
  const shed = metrics.counter({
    name: 'http_requests_shed_total',
    help: 'Requests answered 503 by load shedding, by the threshold that was passed.',
    labelNames: ['reason'] as const,
  })
  const retryAfter = config.LOAD_SHED_RETRY_AFTER_SECONDS
  const overloaded = JSON.stringify({
    detail: `The server is overloaded; retry in ${retryAfter} seconds`,
    code: 'SERVER_OVERLOADED',
  })
  await app.register(underPressure, {
    maxEventLoopDelay: config.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.LOAD_SHED_MAX_HEAP_BYTES,
    maxRssBytes: config.LOAD_SHED_MAX_RSS_BYTES,
    retryAfter,
    // Returning without sending lets the request through (the exempt routes).
    pressureHandler: (request, reply, type) => {
      if (NEVER_SHED.has(request.routeOptions.url ?? '')) return
      shed.inc({ reason: type })
      // Sent as JSON text: the route's own schema for 503 (e.g. /ready's) must not reshape it.
      reply
        .code(503)
        .header('retry-after', String(retryAfter))
        .type('application/json; charset=utf-8')
        .send(overloaded)
    },
  })
}
