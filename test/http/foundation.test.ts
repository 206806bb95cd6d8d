import assert from 'node:assert/strict'
import { test } from 'node:test'
import Type from 'typebox'
import { buildTestApp } from '../helpers/app.ts'

test('GET /health answers 200 {"status":"ok"} with a generated request id', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const response = await fetch(`${baseUrl}/health`)
  assert.equal(response.status, 200)
  assert.equal(await response.text(), '{"status":"ok"}')
  assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
})

test('a sane X-Request-ID is echoed back; an unsafe one is replaced', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const kept = await fetch(`${baseUrl}/health`, { headers: { 'x-request-id': 'abc-123' } })
  assert.equal(kept.headers.get('x-request-id'), 'abc-123')
  const replaced = await fetch(`${baseUrl}/health`, { headers: { 'x-request-id': 'a b<script>' } })
  assert.notEqual(replaced.headers.get('x-request-id'), 'a b<script>')
})

test('GET /ready answers 200 while up and 503 naming the server while draining', async (t) => {
  const { baseUrl, container } = await buildTestApp(t)
  const ready = await fetch(`${baseUrl}/ready`)
  assert.equal(ready.status, 200)
  assert.equal(((await ready.json()) as { status: string }).status, 'ready')
  container.readiness.startDraining()
  const draining = await fetch(`${baseUrl}/ready`)
  assert.equal(draining.status, 503)
  assert.deepEqual(await draining.json(), {
    status: 'not_ready',
    checks: { server: 'draining', database: 'ok', cache: 'ok' },
  })
})

test('/ready answers 503 naming a failing dependency', async (t) => {
  const { baseUrl, container } = await buildTestApp(t)
  container.readiness.add({
    name: 'cache',
    check: async () => {
      throw new Error('connection refused')
    },
  })
  const response = await fetch(`${baseUrl}/ready`)
  assert.equal(response.status, 503)
  const body = (await response.json()) as { checks: Record<string, string> }
  assert.equal(body.checks.cache, 'failing: connection refused')
})

test('/openapi.json is an OpenAPI 3 document listing /health, and /docs is HTML', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
    openapi: string
    paths: object
  }
  assert.match(doc.openapi, /^3\./)
  assert.ok('/health' in doc.paths)
  assert.ok('/ready' in doc.paths)
  const docs = await fetch(`${baseUrl}/docs`)
  assert.equal(docs.status, 200)
  assert.match(docs.headers.get('content-type') ?? '', /text\/html/)
  assert.match(await docs.text(), /swagger-ui/i)
})

test('an unknown route answers 404 in the error shape', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const response = await fetch(`${baseUrl}/no/such/route?x=1`)
  assert.equal(response.status, 404)
  assert.deepEqual(await response.json(), {
    detail: 'Not Found: GET /no/such/route',
    code: 'NOT_FOUND',
  })
})

const EchoBody = Type.Object(
  { name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)

async function appWithProbeRoutes(t: Parameters<typeof buildTestApp>[0]) {
  return buildTestApp(
    t,
    {},
    {
      beforeListen: (app) => {
        app.post('/probe/echo', { schema: { body: EchoBody } }, async (request) => request.body)
        app.get('/probe/crash', async () => {
          throw new Error('secret internals at /srv/app.ts:42')
        })
      },
    },
  )
}

test('invalid input answers 422 with loc, msg and type for the problem', async (t) => {
  const { baseUrl } = await appWithProbeRoutes(t)
  const response = await fetch(`${baseUrl}/probe/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'x', count: -1 }),
  })
  assert.equal(response.status, 422)
  const body = (await response.json()) as {
    detail: Array<{ loc: unknown[]; msg: string; type: string }>
  }
  assert.deepEqual(body.detail[0]?.loc, ['body', 'count'])
  assert.equal(body.detail[0]?.type, 'minimum')
  assert.match(body.detail[0]?.msg ?? '', /0/)
})

test('a missing field is reported with its name in loc', async (t) => {
  const { baseUrl } = await appWithProbeRoutes(t)
  const response = await fetch(`${baseUrl}/probe/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count: 1 }),
  })
  assert.equal(response.status, 422)
  const body = (await response.json()) as { detail: Array<{ loc: unknown[]; msg: string }> }
  assert.deepEqual(body.detail[0], {
    loc: ['body', 'name'],
    msg: 'Field required',
    type: 'required',
  })
})

test('malformed JSON answers 422 json_invalid, never 500', async (t) => {
  const { baseUrl } = await appWithProbeRoutes(t)
  for (const raw of ['{"name": "x",', '', '{"__proto__": {"x": 1}}']) {
    const response = await fetch(`${baseUrl}/probe/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: raw,
    })
    assert.ok(
      response.status === 400 || response.status === 422,
      `${JSON.stringify(raw)} gave ${response.status}`,
    )
    const body = (await response.json()) as { detail: unknown }
    assert.ok(body.detail, `${JSON.stringify(raw)} has a detail`)
  }
})

test('an unexpected error answers 500 without internals', async (t) => {
  const { baseUrl } = await appWithProbeRoutes(t)
  const response = await fetch(`${baseUrl}/probe/crash`)
  assert.equal(response.status, 500)
  const text = await response.text()
  assert.deepEqual(JSON.parse(text), { detail: 'Internal Server Error', code: 'INTERNAL_ERROR' })
  assert.doesNotMatch(text, /secret internals|\.ts/)
})

test('an unsupported content type answers 415 in the error shape', async (t) => {
  const { baseUrl } = await appWithProbeRoutes(t)
  const response = await fetch(`${baseUrl}/probe/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-nonsense' },
    body: 'x',
  })
  assert.equal(response.status, 415)
  const body = (await response.json()) as { detail: string; code: string }
  assert.equal(body.code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
})
