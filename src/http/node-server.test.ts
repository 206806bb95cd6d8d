import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { type TestContext, test } from 'node:test'
import { createNodeServer, type NodeServerSettings, QUIET_BEFORE_CLOSE_MS } from './node-server.ts'

const SETTINGS: NodeServerSettings = {
  TLS_CERT_FILE: undefined,
  TLS_KEY_FILE: undefined,
  MAX_HEADER_BYTES: 16_384,
  HTTP_HEADERS_TIMEOUT_MS: 10_000,
  HTTP_REQUEST_TIMEOUT_MS: 30_000,
  HTTP_KEEP_ALIVE_TIMEOUT_MS: 60_000,
  HTTP_CONNECTION_TIMEOUT_MS: 0,
}

/** A server on a loopback port whose handler answers `ok` after `delayMs`. */
async function listening(t: TestContext, delayMs = 0) {
  const server = createNodeServer(
    SETTINGS,
    (_request: IncomingMessage, response: ServerResponse) => {
      setTimeout(() => response.end('ok'), delayMs)
    },
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  // Whatever the test saw, nothing may hold the test process open.
  t.after(() => {
    server.closeAllConnections()
    if (server.listening) server.close()
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

/** A raw keep-alive connection: `ask` sends a GET and resolves with the whole answer's head. */
async function rawConnection(port: number) {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  let waiting: ((head: string) => void) | undefined
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString()
    const end = received.indexOf('\r\n\r\nok')
    if (end >= 0 && waiting) {
      const head = received.slice(0, end)
      received = received.slice(end + 6)
      waiting(head)
    }
  })
  const closed = once(socket, 'close').then(() => true)
  const ask = (): Promise<string> =>
    new Promise((resolve, reject) => {
      waiting = resolve
      socket.once('close', () => reject(new Error('connection closed before the answer')))
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    })
  return { socket: socket as Socket, ask, closed }
}

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: over ${ms} ms`)), ms),
    ),
  ])

test('closing: a request sent on a keep-alive connection just after close() is answered, then the quiet connection is closed', {
  timeout: 10_000,
}, async (t) => {
  const { server, port } = await listening(t)
  const connection = await rawConnection(port)
  assert.match(await connection.ask(), /^HTTP\/1\.1 200/)
  const closedAt = performance.now()
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Node's own closeIdleConnections would have reset this connection already.
  await new Promise((resolve) => setTimeout(resolve, QUIET_BEFORE_CLOSE_MS / 5))
  assert.match(await connection.ask(), /^HTTP\/1\.1 200/)
  assert.equal(await within(connection.closed, 3000, 'the quiet connection was not closed'), true)
  await within(serverClosed, 3000, 'the server did not close')
  assert.ok(performance.now() - closedAt >= QUIET_BEFORE_CLOSE_MS, 'closed before it was quiet')
})

test('closing: an answer still in flight says Connection: close, and the server closes after it', {
  timeout: 10_000,
}, async (t) => {
  const { server, port } = await listening(t, 300)
  const connection = await rawConnection(port)
  const answer = connection.ask()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
  assert.match(await answer, /\r\nConnection: close/i)
  await within(serverClosed, 3000, 'the server did not close')
  assert.equal(await within(connection.closed, 1000, 'the connection stayed open'), true)
})

test('closing: an idle keep-alive connection does not hold an idle server open', {
  timeout: 10_000,
}, async (t) => {
  const { server, port } = await listening(t)
  const connection = await rawConnection(port)
  await connection.ask()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const startedAt = performance.now()
  await within(
    new Promise<void>((resolve) => server.close(() => resolve())),
    3000,
    'the server did not close',
  )
  assert.ok(performance.now() - startedAt < 2000)
  connection.socket.destroy()
})
