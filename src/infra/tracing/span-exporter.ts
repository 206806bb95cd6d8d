import type { Logger } from 'pino'

/** A finished span, as the HTTP server (and later jobs and clients) record it. */
export interface SpanRecord {
  traceId: string
  spanId: string
  parentSpanId?: string
  /** Low-cardinality: `GET /api/items/:id`, never a raw URL. */
  name: string
  kind: 'server' | 'client' | 'internal' | 'producer' | 'consumer'
  /** Milliseconds since the Unix epoch (fractions allowed). */
  startMs: number
  endMs: number
  attributes: Record<string, string | number | boolean>
  isError: boolean
}

/**
 * Where finished spans go. `export` never blocks or throws: spans are queued and sent in
 * batches in the background; when the collector is slow or down they are dropped, not retried
 * forever, so tracing can never take the service down with it.
 */
export interface SpanExporter {
  export(span: SpanRecord): void
  /** Sends what is queued, then stops. */
  close(): Promise<void>
}

export interface OtlpExporterOptions {
  /** The collector's base URL, e.g. http://otel-collector:4318 (traces go to /v1/traces). */
  endpoint: string
  serviceName: string
  logger: Logger
  maxBatchSize?: number
  flushIntervalMs?: number
  maxQueueSize?: number
  requestTimeoutMs?: number
}

const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const
const STATUS_ERROR = 2

/**
 * OpenTelemetry export over OTLP/HTTP with the JSON encoding, written against the protocol
 * (https://opentelemetry.io/docs/specs/otlp/) rather than the @opentelemetry SDK, which is not a
 * dependency: what servekit records is a few spans per request with ids it already has, so a
 * batcher and one POST are all it takes. Any OTLP collector (the OpenTelemetry Collector, Jaeger,
 * Tempo, Honeycomb, …) accepts it. To use the full SDK instead (auto-instrumentation of mysql2,
 * ioredis, undici), install @opentelemetry/sdk-node and start it before the app, keeping
 * OTEL_EXPORTER_OTLP_ENDPOINT unset here so spans are not sent twice.
 */
export function createOtlpExporter(options: OtlpExporterOptions): SpanExporter {
  const url = `${options.endpoint.replace(/\/+$/, '')}/v1/traces`
  const maxBatchSize = options.maxBatchSize ?? 512
  const maxQueueSize = options.maxQueueSize ?? 8192
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000
  const resource = {
    attributes: [{ key: 'service.name', value: { stringValue: options.serviceName } }],
  }
  let queue: SpanRecord[] = []
  let dropped = 0
  let sending: Promise<void> = Promise.resolve()
  let lastWarningMs = 0

  const warn = (fields: object, message: string) => {
    const now = Date.now()
    if (now - lastWarningMs < 10_000) return
    lastWarningMs = now
    options.logger.warn(fields, message)
  }

  const send = async (batch: SpanRecord[]) => {
    const body = JSON.stringify({
      resourceSpans: [
        { resource, scopeSpans: [{ scope: { name: 'servekit' }, spans: batch.map(toOtlp) }] },
      ],
    })
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(requestTimeoutMs),
      })
      await response.arrayBuffer()
      if (!response.ok) warn({ status: response.status, url }, 'OTLP collector refused spans')
    } catch (error) {
      warn({ err: error, url, spans: batch.length }, 'OTLP collector unreachable: spans dropped')
    }
  }

  const flush = () => {
    if (queue.length === 0) return sending
    const batch = queue
    queue = []
    sending = sending.then(() => send(batch))
    return sending
  }

  const timer = setInterval(() => {
    if (dropped > 0) {
      warn({ dropped }, 'span queue full: spans dropped')
      dropped = 0
    }
    void flush()
  }, options.flushIntervalMs ?? 2000)
  timer.unref()

  return {
    export(span) {
      if (queue.length >= maxQueueSize) {
        dropped += 1
        return
      }
      queue.push(span)
      if (queue.length >= maxBatchSize) void flush()
    },
    async close() {
      clearInterval(timer)
      await flush()
    },
  }
}

function toOtlp(span: SpanRecord) {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    name: span.name,
    kind: SPAN_KIND[span.kind],
    startTimeUnixNano: toNanos(span.startMs),
    endTimeUnixNano: toNanos(span.endMs),
    attributes: Object.entries(span.attributes).map(([key, value]) => ({
      key,
      value:
        typeof value === 'string'
          ? { stringValue: value }
          : typeof value === 'boolean'
            ? { boolValue: value }
            : Number.isInteger(value)
              ? { intValue: String(value) }
              : { doubleValue: value },
    })),
    status: span.isError ? { code: STATUS_ERROR } : {},
  }
}

/** Epoch milliseconds as the decimal string of epoch nanoseconds OTLP/JSON wants. */
function toNanos(ms: number): string {
  const whole = Math.floor(ms)
  const micros = Math.round((ms - whole) * 1000)
  return `${BigInt(whole) * 1_000_000n + BigInt(micros) * 1000n}`
}
