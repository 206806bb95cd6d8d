import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import Fastify from 'fastify'
import { buildTestApp } from '../../../test/helpers/app.ts'
import { answerFrameworkError } from './client-errors.ts'

test('a URL whose percent-encoding does not decode answers 400 BAD_URL in the API shape', async (t) => {
  const { app, baseUrl } = await buildTestApp(t)
  for (const url of ['/%', '/api/items/%E0%A4%A', '/api/orders/%ZZ/events']) {
    const response = await app.inject(url)
    assert.equal(response.statusCode, 400, url)
    assert.deepEqual(response.json(), { detail: 'The URL is not validly encoded', code: 'BAD_URL' })
  }
  // Over a real socket too: the router refuses it before any hook runs.
  const response = await fetch(`${baseUrl}/api/items/%E0%A4%A`)
  assert.equal(response.status, 400)
  assert.equal(((await response.json()) as { code: string }).code, 'BAD_URL')
})

// The app's root wildcard (static files) catches every path the API routes refuse, so the router
// never reports an over-long parameter there; a bare Fastify with the same option shows the answer.
test('a path parameter over the router limit answers 414 URI_TOO_LONG in the API shape', async (t) => {
  const app = Fastify({ frameworkErrors: answerFrameworkError })
  app.get('/things/:id', async () => ({ ok: true }))
  t.after(() => app.close())
  const response = await app.inject(`/things/${'1'.repeat(150)}`)
  assert.equal(response.statusCode, 414)
  assert.deepEqual(response.json(), {
    detail: 'A path parameter of the URL is too long',
    code: 'URI_TOO_LONG',
  })
})

/** Writes `text` on a new connection and returns all the server sends until it closes. */
function exchange(baseUrl: string, text: string): Promise<string> {
  const { port } = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(text))
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no close within 5 s; got ${JSON.stringify(received)}`))
    }, 5000)
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1')
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
    socket.on('error', () => undefined)
  })
}

test('an Expect other than 100-continue answers 417 EXPECTATION_FAILED in the API shape', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const answer = await exchange(
    baseUrl,
    'POST /api/items HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}',
  )
  assert.match(answer, /^HTTP\/1\.1 417 /)
  assert.match(
    answer,
    /\{"detail":"Only \\"Expect: 100-continue\\" is supported","code":"EXPECTATION_FAILED"\}$/,
  )
})

test('a CONNECT request answers 405 METHOD_NOT_ALLOWED in the API shape and is closed', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const answer = await exchange(baseUrl, 'CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.match(answer, /^HTTP\/1\.1 405 /)
  assert.match(answer, /\{"detail":"CONNECT is not supported","code":"METHOD_NOT_ALLOWED"\}$/)
})

test('an HTTP/1.1 request without Host answers 400 HOST_REQUIRED in the API shape', async (t) => {
  const { baseUrl } = await buildTestApp(t)
  const answer = await exchange(baseUrl, 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')
  assert.match(answer, /^HTTP\/1\.1 400 /)
  assert.match(answer, /\{"detail":"The Host header is required","code":"HOST_REQUIRED"\}$/)
  // HTTP/1.0 has no Host requirement.
  const old = await exchange(baseUrl, 'GET /health HTTP/1.0\r\n\r\n')
  assert.match(old, /^HTTP\/1\.1 200 /)
})
