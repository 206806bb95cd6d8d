import { randomFillSync, randomUUID } from 'node:crypto'
import { currentContext, type RequestContext, runWithContext } from './request-context.ts'

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): one trace id follows a piece of work
 * across services, queues and logs; each hop gets its own span id. A request's trace is taken
 * from its `traceparent` header when that is valid (same trace id, a new span id for us, the
 * caller's span id as parent), otherwise a new trace starts. It lives in the request context,
 * so logs, jobs and outgoing calls read it without it being passed by hand.
 */
export interface TraceContext {
  /** 32 lowercase hex digits, never all zeros. */
  traceId: string
  /** This hop's span: 16 lowercase hex digits. */
  spanId: string
  /** The caller's span when the trace came in from outside. */
  parentSpanId?: string
  /** Two hex digits; bit 0 is "sampled". */
  flags: string
  /** Vendor data (`tracestate`), passed on untouched. */
  traceState?: string
}

/** The headers that carry a trace (and the request id) to another process. */
export interface TraceHeaders {
  traceparent?: string
  tracestate?: string
  'x-request-id'?: string
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE_ID = '0'.repeat(32)
const ZERO_SPAN_ID = '0'.repeat(16)
const MAX_TRACESTATE_LENGTH = 512
const TRACESTATE = /^[\x20-\x7e]*$/
const REQUEST_ID = /^[\w.:@-]{1,128}$/

/** The parts of a valid `traceparent` header, or undefined for anything else. */
export function parseTraceparent(
  header: unknown,
): { traceId: string; parentSpanId: string; flags: string } | undefined {
  if (typeof header !== 'string' || header.length < 55 || header.length > 512) return undefined
  const match = TRACEPARENT.exec(header)
  if (!match) return undefined
  const [, version, traceId, parentSpanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ]
  // Version ff is forbidden; version 00 has exactly four fields. A later version may add fields
  // after the fourth: the spec says to read the first four and carry on.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (traceId === ZERO_TRACE_ID || parentSpanId === ZERO_SPAN_ID) return undefined
  return { traceId, parentSpanId, flags }
}

/** The `traceparent` header value of a trace context: version 00, our span as the parent. */
export function formatTraceparent(
  trace: Pick<TraceContext, 'traceId' | 'spanId' | 'flags'>,
): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`
}

/**
 * The trace for work that arrives with these headers: the caller's trace continued with a new
 * span id when `traceparent` is valid, otherwise a new sampled trace. A `tracestate` is kept only
 * with a valid `traceparent`, as the spec requires.
 */
export function continueTrace(traceparent: unknown, tracestate?: unknown): TraceContext {
  const parent = parseTraceparent(traceparent)
  if (!parent) return { traceId: newTraceId(), spanId: newSpanId(), flags: '01' }
  const trace: TraceContext = {
    traceId: parent.traceId,
    spanId: newSpanId(),
    parentSpanId: parent.parentSpanId,
    flags: parent.flags,
  }
  if (
    typeof tracestate === 'string' &&
    tracestate.length > 0 &&
    tracestate.length <= MAX_TRACESTATE_LENGTH &&
    TRACESTATE.test(tracestate)
  ) {
    trace.traceState = tracestate
  }
  return trace
}

/**
 * Headers to send with an outgoing call (HTTP, gRPC metadata, a job's payload) so the other side
 * continues this trace: `traceparent` naming the current span as parent, `tracestate` when there
 * is one, and `x-request-id`. Empty outside a request or job context.
 */
export function currentTraceHeaders(): TraceHeaders {
  const context = currentContext()
  if (!context) return {}
  const headers: TraceHeaders = { 'x-request-id': context.requestId }
  const trace = context.trace
  if (trace) {
    headers.traceparent = formatTraceparent(trace)
    if (trace.traceState) headers.tracestate = trace.traceState
  }
  return headers
}

/**
 * Runs `fn` in a context that continues the trace the headers carry (as `currentTraceHeaders()`
 * produced them, e.g. stored with a job), with a new span id and the same request id when it is
 * sane. Logs written inside carry the trace id and span id. Without headers a new trace starts.
 */
export function runInTrace<T>(headers: TraceHeaders | undefined, fn: () => T): T {
  const given = headers?.['x-request-id']
  const context: RequestContext = {
    requestId: typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID(),
    trace: continueTrace(headers?.traceparent, headers?.tracestate),
  }
  return runWithContext(context, fn)
}

/** The trace of the current request or job, if any. */
export function currentTrace(): TraceContext | undefined {
  return currentContext()?.trace
}

// Ids come from a pool of random bytes refilled in one call: a getrandom syscall per request
// would cost more than everything else this module does.
const POOL_BYTES = 4096
const pool = Buffer.allocUnsafe(POOL_BYTES)
let poolOffset = POOL_BYTES

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return hex
}

/** A new random trace id (16 bytes as hex, never all zeros). */
export function newTraceId(): string {
  let id = randomHex(16)
  while (id === ZERO_TRACE_ID) id = randomHex(16)
  return id
}

/** A new random span id (8 bytes as hex, never all zeros). */
export function newSpanId(): string {
  let id = randomHex(8)
  while (id === ZERO_SPAN_ID) id = randomHex(8)
  return id
}
