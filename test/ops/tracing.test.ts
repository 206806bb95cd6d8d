import assert from 'node:assert/strict'
import { AsyncResource } from 'node:async_hooks'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { test } from 'node:test'
import { createContainer } from '../../src/container/index.ts'
import { createServer } from '../../src/http/server.ts'
import {
  continueTrace,
  currentTraceHeaders,
  parseTraceparent,
  runInTrace,
  type TraceHeaders,
} from '../../src/shared/trace-context.ts'
import { testConfig } from '../helpers/app.ts'
import { buildLoggedApp, type LogLine } from './ops-helpers.ts'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT_ID = '00f067aa0ba902b7'
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`

test('traceparent: valid headers parse; malformed, zero or forbidden ones do not', () => {
  assert.deepEqual(parseTraceparent(TRACEPARENT), {
    traceId: TRACE_ID,
    parentSpanId: PARENT_ID,
    flags: '01',
  })
  // A later version may carry more fields: the first four are read.
  assert.equal(
    parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01-what-comes-next`)?.traceId,
    TRACE_ID,
  )
  for (const bad of [
    undefined,
    '',
    `00-${TRACE_ID}-${PARENT_ID}-01-extra`, // version 00 has exactly four fields
    `ff-${TRACE_ID}-${PARENT_ID}-01`, // version ff is forbidden
    `00-${'0'.repeat(32)}-${PARENT_ID}-01`, // all-zero trace id
    `00-${TRACE_ID}-${'0'.repeat(16)}-01`, // all-zero parent id
    `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`, // hex must be lowercase
    `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`,
    `00-${TRACE_ID}-${PARENT_ID}-1`,
    `${TRACEPARENT}, ${TRACEPARENT}`, // the header sent twice
    ['00', TRACE_ID],
  ]) {
    assert.equal(parseTraceparent(bad), undefined, JSON.stringify(bad))
  }
})

test('continueTrace keeps the trace id with a new span; without a valid parent a new trace starts', () => {
  const continued = continueTrace(TRACEPARENT, 'vendor=abc')
  assert.equal(continued.traceId, TRACE_ID)
  assert.equal(continued.parentSpanId, PARENT_ID)
  assert.match(continued.spanId, /^[0-9a-f]{16}$/)
  assert.notEqual(continued.spanId, PARENT_ID)
  assert.equal(continued.traceState, 'vendor=abc')
  const fresh = continueTrace('garbage', 'vendor=abc')
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/)
  assert.equal(fresh.traceState, undefined, 'tracestate only travels with a valid traceparent')
  assert.equal(fresh.flags, '01')
  const ids = new Set(Array.from({ length: 2000 }, () => continueTrace(undefined).traceId))
  assert.equal(ids.size, 2000)
})

test('outside any request or job there are no trace headers', () => {
  assert.deepEqual(currentTraceHeaders(), {})
})

/** The log lines of one trace. */
const ofTrace = (lines: LogLine[], traceId: string) =>
  lines.filter((line) => line.trace_id === traceId)

test('a request with traceparent: continued in the response, in every log line, and in a job it hands off', async (t) => {
  let handedOff: TraceHeaders | undefined
  // Jobs run outside the request's async context (a worker, a queue callback): the trace must
  // travel in the headers the job carries, not leak through async context.
  const detached = new AsyncResource('probe-job-runner')
  const jobRan = Promise.withResolvers<void>()
  const { baseUrl, lines, container } = await buildLoggedApp(
    t,
    {},
    {
      beforeListen: (app) => {
        app.post('/probe/orders', async (request) => {
          request.log.info('placing the order')
          container.logger.business.info({ order: 'o-1' }, 'order accepted')
          handedOff = currentTraceHeaders()
          detached.runInAsyncScope(() =>
            setImmediate(() =>
              runInTrace(handedOff, () => {
                container.logger.business.info('job: stock deducted')
                jobRan.resolve()
              }),
            ),
          )
          return { ok: true }
        })
      },
    },
  )

  const response = await fetch(`${baseUrl}/probe/orders`, {
    method: 'POST',
    headers: { traceparent: TRACEPARENT, tracestate: 'vendor=abc', 'x-request-id': 'req-trace-1' },
  })
  assert.equal(response.status, 200)
  await jobRan.promise

  const returned = parseTraceparent(response.headers.get('traceparent'))
  assert.ok(returned, 'the response carries a valid traceparent')
  assert.equal(returned.traceId, TRACE_ID, 'same trace')
  assert.notEqual(returned.parentSpanId, PARENT_ID, 'our own span, not the caller’s')
  assert.equal(returned.flags, '01')
  assert.equal(response.headers.get('x-request-id'), 'req-trace-1')

  const ours = ofTrace(lines, TRACE_ID)
  const handler = ours.find((line) => line.msg === 'placing the order')
  const business = ours.find((line) => line.msg === 'order accepted')
  const access = ours.find((line) => line.logger === 'access')
  const job = ours.find((line) => line.msg === 'job: stock deducted')
  for (const [name, line] of Object.entries({ handler, business, access, job })) {
    assert.ok(line, `the ${name} line carries trace_id: ${JSON.stringify(lines)}`)
    assert.equal(line.req_id, 'req-trace-1', `${name} line req_id`)
  }
  assert.equal(handler?.span_id, returned.parentSpanId)
  assert.equal(business?.span_id, returned.parentSpanId)
  assert.equal(access?.span_id, returned.parentSpanId)
  assert.notEqual(job?.span_id, returned.parentSpanId, 'the job is a span of its own')

  assert.deepEqual(handedOff, {
    'x-request-id': 'req-trace-1',
    traceparent: `00-${TRACE_ID}-${returned.parentSpanId}-01`,
    tracestate: 'vendor=abc',
  })
})

test('a request without (or with a malformed) traceparent starts a new trace', async (t) => {
  const { baseUrl, lines } = await buildLoggedApp(t)
  const seen = new Set<string>()
  for (const header of [undefined, 'not-a-traceparent', `00-${'0'.repeat(32)}-${PARENT_ID}-01`]) {
    const response = await fetch(`${baseUrl}/health`, {
      headers: header === undefined ? {} : { traceparent: header },
    })
    const returned = parseTraceparent(response.headers.get('traceparent'))
    assert.ok(returned, `a fresh valid traceparent for ${header}`)
    assert.notEqual(returned.traceId, '0'.repeat(32))
    seen.add(returned.traceId)
    assert.equal(ofTrace(lines, returned.traceId).length, 1, 'its access line carries it')
  }
  assert.equal(seen.size, 3)
})

test('with OTEL_EXPORTER_OTLP_ENDPOINT, sampled request spans reach the collector as OTLP/HTTP JSON', async (t) => {
  const received: Array<{ path: string; body: Record<string, unknown> }> = []
  const collector = createHttpServer((request, response) => {
    let text = ''
    request.on('data', (chunk: Buffer) => {
      text += chunk.toString()
    })
    request.on('end', () => {
      received.push({ path: request.url ?? '', body: JSON.parse(text) })
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  collector.listen(0, '127.0.0.1')
  await once(collector, 'listening')
  t.after(() => collector.close())
  const endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`

  const config = testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })
  const container = await createContainer(config)
  const app = await createServer(container)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const sampled = await fetch(`${base}/api/items/42?x=1`, { headers: { traceparent: TRACEPARENT } })
  const unsampled = `00-${'a'.repeat(32)}-${PARENT_ID}-00`
  await fetch(`${base}/health`, { headers: { traceparent: unsampled } })
  await app.close()
  await container.close() // flushes the queue

  const spans = received.flatMap(({ path, body }) => {
    assert.equal(path, '/v1/traces')
    const [resourceSpans] = body.resourceSpans as Array<{
      resource: { attributes: Array<{ key: string; value: { stringValue: string } }> }
      scopeSpans: Array<{ spans: Array<Record<string, unknown>> }>
    }>
    assert.deepEqual(resourceSpans?.resource.attributes[0], {
      key: 'service.name',
      value: { stringValue: 'servekit' },
    })
    return resourceSpans?.scopeSpans.flatMap((scope) => scope.spans) ?? []
  })
  assert.equal(spans.length, 1, 'only the sampled trace is exported')
  const [span] = spans as [Record<string, unknown>]
  const ourSpan = parseTraceparent(sampled.headers.get('traceparent'))?.parentSpanId
  assert.equal(span.traceId, TRACE_ID)
  assert.equal(span.spanId, ourSpan)
  assert.equal(span.parentSpanId, PARENT_ID)
  assert.equal(span.name, 'GET /api/items/:id')
  assert.equal(span.kind, 2)
  assert.ok(BigInt(String(span.endTimeUnixNano)) >= BigInt(String(span.startTimeUnixNano)))
  const attributes = Object.fromEntries(
    (span.attributes as Array<{ key: string; value: Record<string, unknown> }>).map((entry) => [
      entry.key,
      Object.values(entry.value)[0],
    ]),
  )
  assert.equal(attributes['http.route'], '/api/items/:id')
  assert.equal(attributes['http.response.status_code'], '404')
  assert.equal(attributes['url.path'], '/api/items/42')
})
