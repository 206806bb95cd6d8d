import underPressure from '@fastify/under-pressure'
import type { FastifyReply } from 'fastify'
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
 * How often the event-loop delay, heap and RSS are sampled: an overload is answered within
 * about this long, and it ends as soon (a 1 s sample let a burst queue for a second first).
 */
export const SAMPLE_INTERVAL_MS = 100

/** How often the turn clock ticks (see below). */
const TURN_CLOCK_MS = 10

/**
 * Load shedding: while the event-loop delay, the V8 heap or the RSS is above its LOAD_SHED_*
 * threshold, new requests get 503 with Retry-After in the API's error shape at once, instead of
 * queueing behind work the process cannot finish in time. Each shed request is counted in
 * `http_requests_shed_total{reason}`. With every threshold at 0 nothing is shed.
 *
 * The event-loop delay is judged two ways, both against LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS:
 * - the mean delay of the last SAMPLE_INTERVAL_MS (@fastify/under-pressure, which also samples
 *   heap and RSS): a loop that has been slow sheds for the next interval. Its first sample is
 *   ignored: it spans start-up (routes compiled, the server bound), which is not load.
 * - the delay of the current turn of the loop: a timer stamps each turn, and a request read
 *   longer than the threshold after that stamp has waited at least that long in the socket
 *   (the turn read it only after all the work before it). The mean alone decides once per
 *   interval, so after a quiet sample a turn could take in every queued request and answer the
 *   last of them seconds late.
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
  const answerOverloaded = (reply: FastifyReply, reason: string) => {
    shed.inc({ reason })
    // Sent as JSON text: the route's own schema for 503 (e.g. /ready's) must not reshape it.
    reply
      .code(503)
      .header('retry-after', String(retryAfter))
      .type('application/json; charset=utf-8')
      .send(overloaded)
  }

  // Armed after under-pressure's second sample: both timers have the same interval, and ours,
  // set after its own, fires after it each time.
  let isDelaySampled = false
  const armAfterSecondSample = () => {
    setTimeout(() => {
      isDelaySampled = true
    }, SAMPLE_INTERVAL_MS).unref()
  }
  await app.register(underPressure, {
    sampleInterval: SAMPLE_INTERVAL_MS,
    maxEventLoopDelay: config.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.LOAD_SHED_MAX_HEAP_BYTES,
    maxRssBytes: config.LOAD_SHED_MAX_RSS_BYTES,
    retryAfter,
    // Returning without sending lets the request through (the exempt routes).
    pressureHandler: (request, reply, type) => {
      if (NEVER_SHED.has(request.routeOptions.url ?? '')) return
      if (type === 'eventLoopDelay' && !isDelaySampled) return
      answerOverloaded(reply, type)
    },
  })
  setTimeout(armAfterSecondSample, SAMPLE_INTERVAL_MS).unref()

  const maxDelayMs = config.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS
  if (maxDelayMs === 0) return
  // Unset until the first tick: requests are only read in turns that ran the timers first.
  let turnStartedAt: number | undefined
  const turnClock = setInterval(() => {
    turnStartedAt = performance.now()
  }, TURN_CLOCK_MS).unref()
  app.addHook('onClose', (_instance, done) => {
    clearInterval(turnClock)
    done()
  })
  app.addHook('onRequest', (request, reply, done) => {
    if (
      turnStartedAt === undefined ||
      performance.now() - turnStartedAt <= maxDelayMs ||
      NEVER_SHED.has(request.routeOptions.url ?? '')
    ) {
      done()
      return
    }
    answerOverloaded(reply, 'eventLoopDelay')
  })
}
