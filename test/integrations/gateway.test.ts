import assert from 'node:assert/strict'
import { once } from 'node:events'
import { get, type IncomingMessage } from 'node:http'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { bodyText, sendJson, startUpstream } from '../../src/infra/http-client/test-upstream.ts'
import { integrationApp } from './helpers.ts'

/** A GET with the path exactly as given (no URL normalisation). */
async function rawGet(baseUrl: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(baseUrl)
  const request = get({ host: hostname, port, path })
  const [response] = (await once(request, 'response')) as [IncomingMessage]
  let body = ''
  for await (const chunk of response) body += String(chunk)
  return { status: response.statusCode ?? 0, body }
}

const json = async (response: Response) =>
  JSON.parse(await response.text()) as Record<string, unknown>

test('the gateway proxies method, path, query, body and chosen headers to a local upstream', async (t) => {
  const upstream = await startUpstream(t, async (request, response) => {
    const body = await bodyText(request)
    response.setHeader('x-upstream-secret', 'not passed back')
    response.setHeader('etag', '"v1"')
    if (request.url?.startsWith('/base/missing')) return sendJson(response, 404, { detail: 'nope' })
    sendJson(response, request.method === 'POST' ? 201 : 200, {
      method: request.method,
      url: request.url,
      body,
      headers: request.headers,
    })
  })
  const { baseUrl } = await integrationApp(t, {
    GATEWAY_ROUTES: `/gw/echo=${upstream.url}/base`,
  })

  const got = await fetch(`${baseUrl}/gw/echo/things/7?full=1&tag=a%20b`, {
    headers: {
      'x-request-id': 'gw-test-1',
      authorization: 'Bearer passes-through',
      cookie: 'session=stays-here',
      'x-custom': 'dropped',
      accept: 'application/json',
    },
  })
  assert.equal(got.status, 200)
  assert.equal(got.headers.get('etag'), '"v1"')
  assert.equal(got.headers.get('x-upstream-secret'), null)
  assert.equal(got.headers.get('x-request-id'), 'gw-test-1')
  const echoed = (await json(got)) as { url: string; headers: Record<string, string> }
  assert.equal(echoed.url, '/base/things/7?full=1&tag=a%20b')
  assert.equal(echoed.headers['x-request-id'], 'gw-test-1', 'the request id goes upstream')
  assert.match(echoed.headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
  assert.equal(echoed.headers.authorization, 'Bearer passes-through')
  assert.equal(echoed.headers.accept, 'application/json')
  assert.equal(echoed.headers.cookie, undefined)
  assert.equal(echoed.headers['x-custom'], undefined)
  assert.equal(echoed.headers['x-forwarded-for'], '127.0.0.1')

  const posted = await fetch(`${baseUrl}/gw/echo`, {
    method: 'POST',
    headers: { 'content-type': 'text/csv' },
    body: 'a,b\n1,2\n',
  })
  assert.equal(posted.status, 201)
  const postEcho = (await json(posted)) as {
    method: string
    url: string
    body: string
    headers: Record<string, string>
  }
  assert.equal(postEcho.method, 'POST')
  assert.equal(postEcho.url, '/base')
  assert.equal(postEcho.body, 'a,b\n1,2\n')
  assert.equal(postEcho.headers['content-type'], 'text/csv')

  const jsonBody = await fetch(`${baseUrl}/gw/echo/x`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: '{"keep":"exact bytes" }',
  })
  assert.equal(((await json(jsonBody)) as { body: string }).body, '{"keep":"exact bytes" }')

  const missing = await fetch(`${baseUrl}/gw/echo/missing`)
  assert.equal(missing.status, 404, 'an upstream error answer passes through as it is')
  assert.deepEqual(await json(missing), { detail: 'nope' })

  // Sent raw: fetch would normalise the dot segments away before they left.
  for (const path of ['/gw/echo/a/%2e%2e/%2e%2e/admin', '/gw/echo/../admin', '/gw/echo/./x']) {
    const climbing = await rawGet(baseUrl, path)
    assert.equal(climbing.status, 422, path)
    assert.equal(JSON.parse(climbing.body).detail[0].loc[0], 'path')
  }
  assert.equal(
    upstream.requests.some((request) => request.url.includes('admin')),
    false,
  )
})

test('GET answers are cached briefly by URL, but never for requests with credentials', async (t) => {
  let version = 0
  const upstream = await startUpstream(t, (_request, response) => {
    version++
    sendJson(response, 200, { version })
  })
  const { baseUrl } = await integrationApp(t, {
    GATEWAY_ROUTES: `/gw/data=${upstream.url}`,
    GATEWAY_CACHE_TTL_SECONDS: '60',
  })
  const first = await fetch(`${baseUrl}/gw/data/v?x=1`)
  assert.equal(first.headers.get('x-cache'), 'MISS')
  assert.deepEqual(await json(first), { version: 1 })
  const second = await fetch(`${baseUrl}/gw/data/v?x=1`)
  assert.equal(second.headers.get('x-cache'), 'HIT')
  assert.deepEqual(await json(second), { version: 1 })
  assert.equal(second.headers.get('content-type'), 'application/json')
  assert.equal(upstream.hits, 1)

  assert.deepEqual(await json(await fetch(`${baseUrl}/gw/data/v?x=2`)), { version: 2 })
  const withToken = await fetch(`${baseUrl}/gw/data/v?x=1`, {
    headers: { authorization: 'Bearer someone' },
  })
  assert.equal(withToken.headers.get('x-cache'), null)
  assert.deepEqual(await json(withToken), { version: 3 })
  assert.equal(upstream.hits, 3)
})

test('with the upstream stopped the gateway answers 502; with a silent one, 504', async (t) => {
  const upstream = await startUpstream(t, (_request, response) =>
    sendJson(response, 200, { ok: true }),
  )
  const silent = await startUpstream(t, async (_request, response) => {
    await sleep(3000)
    if (!response.destroyed) sendJson(response, 200, { late: true })
  })
  const { baseUrl } = await integrationApp(t, {
    GATEWAY_ROUTES: `/gw/up=${upstream.url},/gw/slow=${silent.url}`,
    GATEWAY_TIMEOUT_MS: '300',
    GATEWAY_CACHE_TTL_SECONDS: '0',
  })
  assert.equal((await fetch(`${baseUrl}/gw/up/ping`)).status, 200)

  await upstream.close()
  const refused = await fetch(`${baseUrl}/gw/up/ping`)
  const refusedBody = await json(refused)
  t.diagnostic(`upstream stopped: ${refused.status} ${JSON.stringify(refusedBody)}`)
  assert.equal(refused.status, 502)
  assert.deepEqual(refusedBody, {
    detail: 'Upstream "/gw/up" could not be reached',
    code: 'UPSTREAM_UNREACHABLE',
  })

  const started = performance.now()
  const timedOut = await fetch(`${baseUrl}/gw/slow/ping`)
  const elapsedMs = performance.now() - started
  const timedOutBody = await json(timedOut)
  t.diagnostic(
    `silent upstream: ${timedOut.status} after ${elapsedMs.toFixed(0)} ms ${JSON.stringify(timedOutBody)}`,
  )
  assert.equal(timedOut.status, 504)
  assert.deepEqual(timedOutBody, {
    detail: 'Upstream "/gw/slow" did not answer within 300 ms',
    code: 'UPSTREAM_TIMEOUT',
  })
  assert.ok(elapsedMs < 2000)
})

test('each gateway route has its own per-client rate limit', async (t) => {
  const upstream = await startUpstream(t, (_request, response) => sendJson(response, 200, {}))
  const { baseUrl } = await integrationApp(t, {
    GATEWAY_ROUTES: `/gw/limited=${upstream.url}`,
    GATEWAY_RATE_LIMIT_PER_MINUTE: '3',
    GATEWAY_CACHE_TTL_SECONDS: '0',
  })
  const statuses: number[] = []
  for (let index = 0; index < 4; index++) {
    const response = await fetch(`${baseUrl}/gw/limited/${index}`)
    await response.arrayBuffer()
    statuses.push(response.status)
  }
  assert.deepEqual(statuses, [200, 200, 200, 429])
  assert.equal(upstream.hits, 3)
})
