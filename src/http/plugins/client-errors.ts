import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

const ANSWERED = Symbol('servekit.clientErrorAnswered')
/** How long a refused client may go on sending before its connection is cut. */
const DRAIN_MS = 1000

const ANSWERS: Record<string, { status: string; detail: string; code: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: '431 Request Header Fields Too Large',
    detail: 'Request header fields too large',
    code: 'HEADERS_TOO_LARGE',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: '408 Request Timeout',
    detail: 'The request was not received in time',
    code: 'REQUEST_TIMEOUT',
  },
}
const BAD_REQUEST = {
  status: '400 Bad Request',
  detail: 'Malformed HTTP request',
  code: 'BAD_REQUEST',
}

/**
 * Node's `clientError`: a request that never became a request (headers over MAX_HEADER_BYTES,
 * too slow, not HTTP). The answer goes out in the API's error shape with `Connection: close`;
 * then the socket is half-closed while what the client is still sending is read and dropped
 * for up to a second. Destroying it at once, as Node and Fastify do, makes the kernel answer the
 * unread bytes with a reset, and a client that is still uploading its oversized headers may then
 * see "connection reset" instead of the 431.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const marked = socket as Socket & { [ANSWERED]?: true }
  // Node reports every later chunk on a failed parser again; answer once.
  if (marked[ANSWERED] || socket.destroyed || error.code === 'ECONNRESET') return
  marked[ANSWERED] = true
  answerAndClose(socket, (error.code && ANSWERS[error.code]) || BAD_REQUEST)
}

/**
 * Node's `connect` event: a CONNECT request. This is no proxy; without a listener Node drops
 * the connection without a word, so the client is told 405 in the API's shape.
 */
export function answerConnect(_request: IncomingMessage, socket: Duplex): void {
  answerAndClose(socket as Socket, {
    status: '405 Method Not Allowed',
    detail: 'CONNECT is not supported',
    code: 'METHOD_NOT_ALLOWED',
  })
}

/**
 * Node's `checkExpectation` event: an `Expect` header other than 100-continue. Node would answer
 * 417 with an empty body; this answers it in the API's shape.
 */
export function answerExpectationFailed(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify({
    detail: 'Only "Expect: 100-continue" is supported',
    code: 'EXPECTATION_FAILED',
  })
  response.writeHead(417, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  })
  response.end(body)
}

/** An HTTP/1.1 request without a Host header (RFC 9112 §3.2: answer 400). */
export function answerMissingHost(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify({ detail: 'The Host header is required', code: 'HOST_REQUIRED' })
  response.writeHead(400, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  })
  response.end(body)
}

/**
 * Writes `answer` and closes: the socket is half-closed while what the client is still sending
 * is read and dropped for up to a second.
 */
function answerAndClose(socket: Socket, answer: { status: string; detail: string; code: string }) {
  if (socket.writable) {
    const body = JSON.stringify({ detail: answer.detail, code: answer.code })
    socket.write(
      `HTTP/1.1 ${answer.status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
  }
  socket.removeAllListeners('data')
  socket.on('data', () => undefined)
  socket.on('error', () => undefined)
  socket.resume()
  socket.end()
  setTimeout(() => socket.destroy(), DRAIN_MS).unref()
}

const FRAMEWORK_ANSWERS: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_URL', detail: 'The URL is not validly encoded' },
  FST_ERR_MAX_PARAM_LENGTH: {
    status: 414,
    code: 'URI_TOO_LONG',
    detail: 'A path parameter of the URL is too long',
  },
}

/**
 * Fastify's `frameworkErrors`: requests the router refuses before any hook or the error handler
 * runs (a URL whose percent-encoding does not decode, a path parameter over maxParamLength).
 * Fastify answers them in its own `{error, message, statusCode}` shape; this answers in the
 * API's. The path is left out of the message: it is whatever the client sent.
 */
export function answerFrameworkError(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  const answer = (error.code && FRAMEWORK_ANSWERS[error.code]) || {
    status: 500,
    code: 'INTERNAL_ERROR',
    detail: 'Internal Server Error',
  }
  if (answer.status >= 500) reply.log.error({ err: error }, 'unhandled framework error')
  void reply.code(answer.status).send({ detail: answer.detail, code: answer.code })
}
