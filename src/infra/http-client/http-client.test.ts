import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  createMemoryNonceStore,
  createSignatureVerifier,
  type SignatureCheck,
} from '../../shared/hmac-signing.ts'
import { runWithContext } from '../../shared/request-context.ts'
import { createHttpClient, type HttpClientOptions } from './http-client.ts'
import { bodyText, sendJson, startUpstream } from './test-upstream.ts'

function client(t: TestContext, options: Partial<HttpClientOptions> = {}) {
  const created = createHttpClient({
    timeoutMs: 2000,
    retries: 2,
    connections: 4,
    keepAliveTimeoutMs: 10_000,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 20,
    ...options,
  })
  t.after(() => created.close())
  return created
}

test('sequential calls reuse one keep-alive socket; concurrent ones stay within the pool', async (t) => {
  const upstream = await startUpstream(t, (_request, response) =>
    sendJson(response, 200, { ok: 1 }),
  )
  const single = client(t, { baseUrl: upstream.url, connections: 1 })
  for (let index = 0; index < 20; index++) {
    const result = await single.getJson('/ping')
    assert.equal(result.status, 200)
  }
  assert.equal(upstream.hits, 20)
  assert.equal(upstream.connections, 1, 'one socket for 20 sequential calls')

  const pooled = client(t, { baseUrl: upstream.url, connections: 3 })
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 10 }, () => pooled.getJson('/ping')))
  }
  assert.equal(upstream.hits, 70)
  assert.equal(upstream.connections, 1 + 3, '50 calls, 10 at a time, on 3 pooled sockets')
})

test('the JSON helpers answer { ok, status, data, error } for 200, 204, 404 and 500', async (t) => {
  const upstream = await startUpstream(t, async (request, response) => {
    if (request.url === '/items/1') return sendJson(response, 200, { id: '1', name: 'pen' })
    if (request.url === '/items' && request.method === 'POST') {
      const body = JSON.parse(await bodyText(request))
      return sendJson(response, 201, { ...body, id: '2', type: request.headers['content-type'] })
    }
    if (request.url === '/items/2' && request.method === 'DELETE') {
      response.writeHead(204).end()
      return
    }
    if (request.url === '/boom') {
      response.writeHead(500, { 'content-type': 'text/plain' }).end('database on fire')
      return
    }
    if (request.url === '/not-json') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"half":')
      return
    }
    sendJson(response, 404, { detail: 'Item not found', code: 'ITEMS_NOT_FOUND' })
  })
  const http = client(t, { baseUrl: `${upstream.url}/` })

  const found = await http.getJson<{ id: string; name: string }>('items/1')
  assert.equal(found.ok, true)
  assert.equal(found.status, 200)
  assert.deepEqual(found.data, { id: '1', name: 'pen' })
  assert.equal(found.error, undefined)

  const created = await http.postJson('/items', { name: 'ink' })
  assert.deepEqual(created.data, { name: 'ink', id: '2', type: 'application/json' })
  assert.equal(created.status, 201)

  const deleted = await http.deleteJson('/items/2')
  assert.deepEqual([deleted.ok, deleted.status, deleted.data], [true, 204, null])

  const missing = await http.getJson('/items/9')
  assert.equal(missing.ok, false)
  assert.equal(missing.status, 404)
  assert.equal(missing.data, undefined)
  assert.equal(missing.error?.kind, 'http')
  assert.deepEqual(missing.error?.body, { detail: 'Item not found', code: 'ITEMS_NOT_FOUND' })

  const broken = await http.postJson('/boom', {})
  assert.deepEqual(
    [broken.status, broken.error?.kind, broken.error?.body],
    [500, 'http', 'database on fire'],
  )

  const garbled = await http.getJson('/not-json')
  assert.deepEqual([garbled.ok, garbled.status, garbled.error?.kind], [false, 200, 'invalid_json'])
})

test('with nothing listening, a JSON call answers status 0 and a network error', async (t) => {
  const upstream = await startUpstream(t, (_request, response) => sendJson(response, 200, {}))
  await upstream.close()
  const http = client(t, { retries: 1 })
  const result = await http.getJson(`${upstream.url}/gone`)
  assert.equal(result.ok, false)
  assert.equal(result.status, 0)
  assert.equal(result.error?.kind, 'network')
  assert.equal(result.error?.attempts, 2)
  assert.match(result.error?.message ?? '', /ECONNREFUSED/)
})

test('a call slower than timeoutMs ends with status 0 and kind timeout', async (t) => {
  const upstream = await startUpstream(t, async (_request, response) => {
    await sleep(3000)
    if (!response.destroyed) sendJson(response, 200, {})
  })
  const http = client(t, { baseUrl: upstream.url, timeoutMs: 100, retries: 0 })
  const started = performance.now()
  const result = await http.getJson('/slow')
  const elapsedMs = performance.now() - started
  assert.equal(result.status, 0)
  assert.equal(result.error?.kind, 'timeout')
  assert.ok(elapsedMs >= 90 && elapsedMs < 1000, `took ${elapsedMs} ms`)

  const perCall = await http.getJson('/slow', { timeoutMs: 50 })
  assert.equal(perCall.error?.kind, 'timeout')
})

test('a caller abort ends the call with kind aborted and no retry', async (t) => {
  const upstream = await startUpstream(t, async (_request, response) => {
    await sleep(3000)
    if (!response.destroyed) sendJson(response, 200, {})
  })
  const http = client(t, { baseUrl: upstream.url })
  const result = await http.getJson('/slow', { signal: AbortSignal.timeout(50) })
  assert.equal(result.error?.kind, 'aborted')
  assert.equal(upstream.hits, 1)
})

test('503 is retried for GET, PUT and DELETE but never for POST or PATCH', async (t) => {
  const upstream = await startUpstream(t, (_request, response) =>
    sendJson(response, 503, { detail: 'busy' }),
  )
  const http = client(t, { baseUrl: upstream.url, retries: 2 })
  const expectations = [
    ['GET', 3],
    ['PUT', 3],
    ['DELETE', 3],
    ['POST', 1],
    ['PATCH', 1],
  ] as const
  for (const [method, attempts] of expectations) {
    const before = upstream.hits
    const result =
      method === 'GET'
        ? await http.getJson('/x')
        : method === 'DELETE'
          ? await http.deleteJson('/x')
          : await http[`${method.toLowerCase() as 'put' | 'post' | 'patch'}Json`]('/x', {})
    assert.equal(result.status, 503)
    assert.equal(upstream.hits - before, attempts, method)
    assert.equal(result.error?.attempts, attempts)
  }
})

test('a dropped connection is retried for GET and not for POST; a recovery is returned', async (t) => {
  let drops = 0
  const upstream = await startUpstream(t, (request, response) => {
    if (request.url === '/flaky' && drops < 2) {
      drops++
      request.socket.destroy()
      return
    }
    if (request.url === '/always-drop') {
      request.socket.destroy()
      return
    }
    sendJson(response, 200, { recovered: true })
  })
  const http = client(t, { baseUrl: upstream.url, retries: 2 })
  const recovered = await http.getJson('/flaky')
  assert.deepEqual(recovered.data, { recovered: true })
  assert.equal(upstream.hits, 3)

  const get = await http.getJson('/always-drop')
  assert.deepEqual([get.status, get.error?.kind, get.error?.attempts], [0, 'network', 3])
  const before = upstream.hits
  const post = await http.postJson('/always-drop', { once: true })
  assert.deepEqual([post.status, post.error?.kind, upstream.hits - before], [0, 'network', 1])
})

test('Retry-After is waited for when short, and ends the retries when too long', async (t) => {
  let calls = 0
  const upstream = await startUpstream(t, (request, response) => {
    calls++
    if (request.url === '/soon' && calls === 1) {
      response.writeHead(503, { 'retry-after': '1' }).end()
      return
    }
    if (request.url === '/much-later') {
      response.writeHead(503, { 'retry-after': '3600' }).end()
      return
    }
    sendJson(response, 200, { calls })
  })
  const http = client(t, { baseUrl: upstream.url, retryMaxDelayMs: 2000 })
  const started = performance.now()
  const soon = await http.getJson('/soon')
  const elapsedMs = performance.now() - started
  assert.deepEqual(soon.data, { calls: 2 })
  assert.ok(elapsedMs >= 990, `waited ${elapsedMs} ms for Retry-After: 1`)

  const before = upstream.hits
  const later = await http.getJson('/much-later')
  assert.equal(later.status, 503)
  assert.equal(upstream.hits - before, 1)
})

test('the current request id goes out as X-Request-ID on every call', async (t) => {
  const upstream = await startUpstream(t, (_request, response) => sendJson(response, 200, {}))
  const http = client(t, { baseUrl: upstream.url })
  await runWithContext({ requestId: 'req-42' }, async () => {
    await http.getJson('/a')
    await sleep(1)
    await http.postJson('/b', {})
    await http.getJson('/c', { headers: { 'X-Request-ID': 'explicit' } })
  })
  await http.getJson('/outside')
  assert.deepEqual(
    upstream.requests.map((request) => request.headers['x-request-id']),
    ['req-42', 'req-42', 'explicit', undefined],
  )
})

test('a signing client is accepted by the verifier, retries included (fresh nonce each)', async (t) => {
  const key = { keyId: 'gateway', secret: 'shared-secret-between-two-services' }
  const verifier = createSignatureVerifier({
    secretFor: (keyId) => (keyId === key.keyId ? key.secret : undefined),
    nonceStore: createMemoryNonceStore(),
  })
  const checks: SignatureCheck[] = []
  const upstream = await startUpstream(t, async (request, response) => {
    const body = await bodyText(request)
    checks.push(
      await verifier.check({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body,
      }),
    )
    if (checks.length === 1) return sendJson(response, 503, {})
    sendJson(response, 200, { ok: true })
  })
  const http = client(t, { baseUrl: upstream.url, sign: key })
  const result = await http.putJson('/internal/users/7', { name: 'x' }, { query: { full: 1 } })
  assert.equal(result.status, 200)
  assert.deepEqual(checks, [
    { isValid: true, keyId: 'gateway' },
    { isValid: true, keyId: 'gateway' },
  ])
  assert.equal(upstream.requests[1]?.url, '/internal/users/7?full=1')
  await assert.rejects(http.upload('/internal/upload', Readable.from(['x'])), TypeError)
})

test('an answer larger than maxResponseBytes is refused with kind too_large', async (t) => {
  const upstream = await startUpstream(t, (_request, response) =>
    sendJson(response, 200, { blob: 'x'.repeat(5000) }),
  )
  const http = client(t, { baseUrl: upstream.url, maxResponseBytes: 1000 })
  const result = await http.getJson('/big')
  assert.deepEqual([result.ok, result.status, result.error?.kind], [false, 200, 'too_large'])
})

test('programmer errors throw: a relative path without baseUrl, bad options', async (t) => {
  const http = client(t)
  await assert.rejects(http.getJson('/relative'), TypeError)
  assert.throws(
    () => createHttpClient({ timeoutMs: -1, retries: 0, connections: 1, keepAliveTimeoutMs: 1000 }),
    TypeError,
  )
})

test('request() gives the raw answer for any status, with a readable body', async (t) => {
  const upstream = await startUpstream(t, (_request, response) => {
    response.writeHead(418, { 'x-kind': 'teapot' }).end('short and stout')
  })
  const http = client(t, { baseUrl: upstream.url })
  const response = await http.request('/brew', { method: 'POST', body: 'coffee' })
  assert.equal(response.status, 418)
  assert.equal(response.headers['x-kind'], 'teapot')
  assert.equal(await response.body.text(), 'short and stout')
  assert.equal(http.urlFor('/brew', { a: 1 }), `${upstream.url}/brew?a=1`)
})
