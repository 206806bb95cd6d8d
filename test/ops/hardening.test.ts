import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { connect as http2Connect } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config/index.ts'
import { computeSecurityHeaders } from '../../src/http/plugins/security.ts'
import { buildTestApp } from '../helpers/app.ts'
import { baseUrlOf, selfSignedCertificate, sleep } from './ops-helpers.ts'

const json = { 'content-type': 'application/json' }

test('a 2 MB body gets 413 in the error shape', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const body = JSON.stringify({ username: 'x', password: 'y'.repeat(2 * 1024 * 1024) })
  const response = await fetch(`${baseUrl}/api/auth/register`, {
    method: 'POST',
    headers: json,
    body,
  })
  assert.equal(response.status, 413)
  assert.deepEqual(await response.json(), {
    detail: 'Request body is too large',
    code: 'FST_ERR_CTP_BODY_TOO_LARGE',
  })
  // BODY_LIMIT_BYTES moves the limit.
  const { baseUrl: roomy } = await buildTestApp(t, { BODY_LIMIT_BYTES: String(4 * 1024 * 1024) })
  const accepted = await fetch(`${roomy}/api/auth/register`, {
    method: 'POST',
    headers: json,
    body,
  })
  assert.notEqual(accepted.status, 413)
})

test('a 64 KB header gets 431 in the error shape, not a reset', async (t) => {
  const { baseUrl, app } = await buildTestApp(t)
  const response = await fetch(`${baseUrl}/health`, { headers: { 'x-big': 'a'.repeat(64 * 1024) } })
  assert.equal(response.status, 431)
  assert.deepEqual(await response.json(), {
    detail: 'Request header fields too large',
    code: 'HEADERS_TOO_LARGE',
  })

  // A client still sending its headers when the limit is passed reads the answer too: the
  // server drains what comes after instead of resetting the connection.
  const address = app.server.address() as { port: number }
  const socket = connect(address.port, '127.0.0.1')
  await once(socket, 'connect')
  let answer = ''
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString()
  })
  const closed = new Promise<string>((resolve) => {
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
    socket.once('close', () => resolve('closed'))
  })
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\n')
  for (let sent = 0; sent < 64 * 1024 && !socket.destroyed; sent += 8192) {
    socket.write(`x-part-${sent}: ${'b'.repeat(8192)}\r\n`)
    await sleep(20)
  }
  socket.end('\r\n')
  assert.equal(await closed, 'closed')
  assert.match(answer, /^HTTP\/1\.1 431 /)
  assert.match(answer, /"code":"HEADERS_TOO_LARGE"/)
})

test('the Node server limits and timeouts are set from the config', async (t) => {
  const { app } = await buildTestApp(t, {
    MAX_HEADER_BYTES: '32768',
    HTTP_HEADERS_TIMEOUT_MS: '5000',
    HTTP_REQUEST_TIMEOUT_MS: '20000',
    HTTP_KEEP_ALIVE_TIMEOUT_MS: '65000',
    HTTP_CONNECTION_TIMEOUT_MS: '120000',
  })
  const server = app.server as import('node:http').Server & { maxHeaderSize: number }
  assert.equal(server.maxHeaderSize, 32768)
  assert.equal(server.headersTimeout, 5000)
  assert.equal(server.requestTimeout, 20000)
  assert.equal(server.keepAliveTimeout, 65000)
  assert.equal(server.timeout, 120000)
})

test('a client that does not finish its headers in time gets 408 and is cut off', async (t) => {
  const { app } = await buildTestApp(t, { HTTP_HEADERS_TIMEOUT_MS: '1000' })
  const address = app.server.address() as { port: number }
  const socket = connect(address.port, '127.0.0.1')
  let answer = ''
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString()
  })
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ')
  const started = Date.now()
  await once(socket, 'close')
  const elapsedMs = Date.now() - started
  assert.match(answer, /^HTTP\/1\.1 408 /)
  assert.match(answer, /"code":"REQUEST_TIMEOUT"/)
  assert.ok(elapsedMs >= 900 && elapsedMs < 4000, `cut off after ${elapsedMs} ms`)
})

test('a handler that has not answered within HTTP_HANDLER_TIMEOUT_MS gets 503; a started stream runs on', async (t) => {
  const { baseUrl } = await buildTestApp(
    t,
    { HTTP_HANDLER_TIMEOUT_MS: '300' },
    {
      beforeListen: (app) => {
        const StatusOnly = {
          type: 'object',
          properties: { status: { type: 'string' } },
          required: ['status'],
        }
        app.get('/probe/stuck', { schema: { response: { 503: StatusOnly } } }, async () => {
          await sleep(1500)
          return { status: 'late' }
        })
        app.get('/probe/stream', async (_request, reply) => {
          const { Readable } = await import('node:stream')
          const chunks = async function* () {
            for (let i = 0; i < 6; i++) {
              yield `chunk ${i}\n`
              await sleep(100)
            }
          }
          return reply.type('text/plain').send(Readable.from(chunks()))
        })
      },
    },
  )
  const started = Date.now()
  const stuck = await fetch(`${baseUrl}/probe/stuck`)
  assert.equal(stuck.status, 503)
  assert.deepEqual(await stuck.json(), {
    detail: 'The server did not answer within 300 ms',
    code: 'HANDLER_TIMEOUT',
  })
  assert.ok(Date.now() - started < 1200, 'answered at the timeout, not when the handler ended')

  const stream = await fetch(`${baseUrl}/probe/stream`)
  assert.equal(stream.status, 200)
  assert.equal((await stream.text()).split('\n').filter(Boolean).length, 6)
})

test('CORS: an allowed origin is granted, any other gets no grant', async (t) => {
  const { baseUrl } = await buildTestApp(t, {
    CORS_ORIGINS: 'https://app.example.com,https://admin.example.com',
    CORS_ALLOW_CREDENTIALS: 'true',
  })
  const allowed = await fetch(`${baseUrl}/health`, {
    headers: { origin: 'https://app.example.com' },
  })
  assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com')
  assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true')
  assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /x-request-id/)
  assert.match(allowed.headers.get('vary') ?? '', /Origin/i)

  for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'null']) {
    const denied = await fetch(`${baseUrl}/health`, { headers: { origin } })
    assert.equal(denied.status, 200)
    // No Access-Control-Allow-Origin: the browser keeps the answer from the calling page.
    assert.equal(denied.headers.get('access-control-allow-origin'), null, origin)
  }

  const preflight = (origin: string) =>
    fetch(`${baseUrl}/api/items`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    })
  const grantedPreflight = await preflight('https://admin.example.com')
  assert.equal(grantedPreflight.status, 204)
  assert.equal(
    grantedPreflight.headers.get('access-control-allow-origin'),
    'https://admin.example.com',
  )
  assert.match(grantedPreflight.headers.get('access-control-allow-methods') ?? '', /POST/)
  const deniedPreflight = await preflight('https://evil.example')
  assert.equal(deniedPreflight.headers.get('access-control-allow-origin'), null)
})

test('CORS: with no CORS_ORIGINS no origin is granted', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const response = await fetch(`${baseUrl}/health`, {
    headers: { origin: 'https://app.example.com' },
  })
  assert.equal(response.headers.get('access-control-allow-origin'), null)
})

test('config: * with credentials, a malformed origin, or half a TLS pair is refused at load time', () => {
  const load = (env: Record<string, string>) => () => loadConfig(env, { readFiles: false })
  assert.throws(load({ CORS_ORIGINS: '*', CORS_ALLOW_CREDENTIALS: 'true' }), (error: Error) => {
    assert.ok(error instanceof ConfigError)
    assert.match(error.message, /^CORS_ORIGINS="\*" is invalid with CORS_ALLOW_CREDENTIALS=true/)
    return true
  })
  assert.doesNotThrow(load({ CORS_ORIGINS: '*' }))
  assert.throws(load({ CORS_ORIGINS: 'app.example.com' }), /CORS_ORIGINS="app.example.com"/)
  assert.throws(load({ CORS_ORIGINS: 'https://a.example/path' }), /CORS_ORIGINS/)
  assert.throws(load({ TLS_CERT_FILE: '/x/cert.pem' }), /TLS_KEY_FILE is missing/)
  assert.throws(load({ TLS_KEY_FILE: '/x/key.pem' }), /TLS_CERT_FILE is missing/)
})

test('security headers on every answer; the CSP lets Swagger UI load from this origin', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  for (const path of ['/health', '/docs', '/no/such/route', '/api/items?limit=1000']) {
    const response = await fetch(`${baseUrl}${path}`)
    const headers = response.headers
    assert.equal(headers.get('x-content-type-options'), 'nosniff', path)
    assert.equal(headers.get('x-frame-options'), 'SAMEORIGIN', path)
    assert.equal(headers.get('referrer-policy'), 'no-referrer', path)
    assert.equal(headers.get('cross-origin-opener-policy'), 'same-origin', path)
    const csp = headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/, path)
    assert.match(csp, /script-src 'self'/, path)
    assert.match(csp, /object-src 'none'/, path)
    assert.doesNotMatch(csp, /upgrade-insecure-requests/, path)
    assert.equal(headers.get('strict-transport-security'), null, 'no HSTS on plain local HTTP')
  }
  const prod = await computeSecurityHeaders({ APP_ENV: 'prod', TLS_CERT_FILE: undefined })
  assert.match(prod['strict-transport-security'] ?? '', /max-age=\d+/)
})

const chromiumPath = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
].find((path) => existsSync(path))

test('Swagger UI renders under the CSP in a real browser, with no CSP violation', {
  skip: chromiumPath ? false : 'no Chromium on this machine',
  timeout: 60_000,
}, async (t) => {
  const { chromium } = await import('playwright-core')
  const { baseUrl } = await buildTestApp(t)
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
  t.after(() => browser.close())
  const page = await browser.newPage()
  const violations: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text())
  })
  await page.goto(`${baseUrl}/docs`)
  await page.waitForSelector('.opblock-summary-path', { timeout: 20_000 })
  const paths = await page.locator('.opblock-summary-path').allTextContents()
  assert.ok(
    paths.some((path) => path.includes('/health')),
    paths.join(', '),
  )
  assert.deepEqual(violations, [])
})

test('load shedding: past the event-loop delay threshold, 503 with Retry-After; /health still answers', async (t) => {
  const { baseUrl } = await buildTestApp(
    t,
    // A threshold well above what a busy test machine's idle loop shows, and a block well
    // beyond it: the mean delay of the sampled second jumps past 50 ms, then falls back.
    { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '50', LOAD_SHED_RETRY_AFTER_SECONDS: '7' },
    {
      beforeListen: (app) => {
        app.post('/probe/block', async () => {
          const until = Date.now() + 1200
          while (Date.now() < until) {
            // hold the event loop, as a CPU-bound bug would
          }
          return { blocked: true }
        })
      },
    },
  )
  let shed: Response | undefined
  for (let round = 0; round < 8 && !shed; round++) {
    await fetch(`${baseUrl}/probe/block`, { method: 'POST' })
    // /ready declares its own 503 body: the shed answer must keep the error shape regardless.
    const response = await fetch(`${baseUrl}/ready`)
    if (response.status === 503) shed = response
    else await response.arrayBuffer()
  }
  assert.ok(shed, 'no 503 while the event loop was blocked')
  assert.equal(shed.headers.get('retry-after'), '7')
  assert.deepEqual(await shed.json(), {
    detail: 'The server is overloaded; retry in 7 seconds',
    code: 'SERVER_OVERLOADED',
  })
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200, 'liveness is never shed')
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text()
  assert.match(metrics, /http_requests_shed_total\{reason="eventLoopDelay"\} [1-9]/)

  // Once the loop is idle again, requests go through.
  let recovered = false
  for (let round = 0; round < 50 && !recovered; round++) {
    await sleep(100)
    const response = await fetch(`${baseUrl}/api/items`)
    recovered = response.status === 200
    await response.arrayBuffer()
  }
  assert.ok(recovered, 'still shedding after the loop went idle')
  assert.equal((await fetch(`${baseUrl}/ready`)).status, 200)
})

test('while draining, every answer says Connection: close so keep-alive clients move on', async (t) => {
  const { baseUrl, container } = await buildTestApp(t)
  const before = await fetch(`${baseUrl}/health`)
  assert.notEqual(before.headers.get('connection'), 'close')
  container.readiness.startDraining()
  const after = await fetch(`${baseUrl}/health`)
  assert.equal(after.status, 200)
  assert.equal(after.headers.get('connection'), 'close')
})

const certificate = selfSignedCertificate()

test('with TLS_CERT_FILE and TLS_KEY_FILE: HTTPS, HTTP/2 by ALPN, and HTTP/1.1 on the same port', {
  skip: certificate ? false : 'openssl is not installed: no certificate to test with',
}, async (t) => {
  const cert = certificate as NonNullable<typeof certificate>
  const { app } = await buildTestApp(t, {
    TLS_CERT_FILE: cert.certFile,
    TLS_KEY_FILE: cert.keyFile,
  })
  const base = baseUrlOf(app, 'https')

  const http1 = await new Promise<{ status: number; body: string; alpn: string | false | null }>(
    (resolve, reject) => {
      const options = { ca: cert.cert, ALPNProtocols: ['http/1.1'] }
      const request = httpsRequest(`${base}/health`, options, (response) => {
        const alpn = (response.socket as import('node:tls').TLSSocket).alpnProtocol
        let body = ''
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString()
        })
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body,
            alpn,
          }),
        )
      })
      request.on('error', reject)
      request.end()
    },
  )
  assert.equal(http1.status, 200)
  assert.equal(http1.body, '{"status":"ok"}')
  assert.equal(http1.alpn, 'http/1.1')

  const session = http2Connect(base, { ca: cert.cert })
  t.after(() => session.close())
  const stream = session.request({
    ':path': '/health',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  })
  const [headers] = (await once(stream, 'response')) as [Record<string, string | number>]
  let body = ''
  stream.on('data', (chunk: Buffer) => {
    body += chunk.toString()
  })
  await once(stream, 'end')
  assert.equal(headers[':status'], 200)
  assert.equal(body, '{"status":"ok"}')
  assert.equal(session.alpnProtocol, 'h2')
  assert.match(String(headers.traceparent), /^00-4bf92f3577b34da6a3ce929d0e0e4736-/)
  assert.equal(headers['x-content-type-options'], 'nosniff')
  assert.match(String(headers['strict-transport-security']), /max-age/)
})
