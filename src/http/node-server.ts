import { readFileSync } from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Config } from '../config/index.ts'
import { runWithContext } from '../shared/request-context.ts'
import { continueTrace } from '../shared/trace-context.ts'
import {
  answerConnect,
  answerExpectationFailed,
  answerMissingHost,
} from './plugins/client-errors.ts'
import { requestIdOf } from './request-id.ts'

export type NodeServerSettings = Pick<
  Config,
  | 'TLS_CERT_FILE'
  | 'TLS_KEY_FILE'
  | 'MAX_HEADER_BYTES'
  | 'HTTP_HEADERS_TIMEOUT_MS'
  | 'HTTP_REQUEST_TIMEOUT_MS'
  | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'
  | 'HTTP_CONNECTION_TIMEOUT_MS'
>

type Handler = (request: IncomingMessage, response: ServerResponse) => void

/** How often Node checks the header and request timeouts (its default, 30 s, lets them overrun). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000

/**
 * The Node server under Fastify. Plain HTTP/1.1, or with TLS_CERT_FILE and TLS_KEY_FILE HTTPS
 * with HTTP/2 (ALPN; HTTP/1.1 clients are served on the same port). Every limit is set here on
 * purpose, since with a server factory Fastify sets none, and Node's defaults are either off or
 * loose: the request head size (431 beyond it), the time to send the headers and the whole
 * request (408), how long an idle keep-alive connection stays, and the socket inactivity timeout.
 *
 * Each request runs inside its own request context (request id and W3C trace), which logs,
 * queries, outgoing calls and jobs read.
 */
export function createNodeServer(settings: NodeServerSettings, handler: Handler): Server {
  const serve = (request: IncomingMessage, response: ServerResponse) => {
    const { headers } = request
    runWithContext(
      {
        requestId: requestIdOf(request),
        trace: continueTrace(headers.traceparent, headers.tracestate),
      },
      () => handler(request, response),
    )
  }
  if (settings.TLS_CERT_FILE && settings.TLS_KEY_FILE) return createTlsServer(settings, serve)

  const server = createHttpServer(
    {
      maxHeaderSize: settings.MAX_HEADER_BYTES,
      headersTimeout: settings.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: Math.max(settings.HTTP_REQUEST_TIMEOUT_MS, settings.HTTP_HEADERS_TIMEOUT_MS),
      keepAliveTimeout: settings.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      // Node's own check answers an HTTP/1.1 request without Host 400 with no body; the same
      // rule is applied below, answered in the API's shape.
      requireHostHeader: false,
    },
    (request, response) => {
      if (request.headers.host === undefined && request.httpVersion === '1.1')
        return answerMissingHost(request, response)
      serve(request, response)
    },
  )
  server.keepAliveTimeout = settings.HTTP_KEEP_ALIVE_TIMEOUT_MS
  if (settings.HTTP_CONNECTION_TIMEOUT_MS > 0)
    server.setTimeout(settings.HTTP_CONNECTION_TIMEOUT_MS)
  // Requests Node answers itself, with no body or no answer at all: answered in the API's shape.
  server.on('checkExpectation', answerExpectationFailed)
  server.on('connect', answerConnect)
  return server
}

/**
 * HTTPS + HTTP/2 with HTTP/1.1 fallback. The HTTP/1.1 side reads the same limits from the
 * server's properties; HTTP/2 sessions close (GOAWAY) after the keep-alive timeout of idleness.
 * The server is returned as an http.Server: Fastify and the serve command use only what both
 * have, plus `closeAllConnections`, added here (the HTTP/2 server lacks it).
 */
function createTlsServer(settings: NodeServerSettings, serve: Handler): Server {
  const server = createSecureServer(
    {
      cert: readFileSync(settings.TLS_CERT_FILE as string),
      key: readFileSync(settings.TLS_KEY_FILE as string),
      allowHTTP1: true,
      maxSendHeaderBlockLength: settings.MAX_HEADER_BYTES,
      settings: { maxHeaderListSize: settings.MAX_HEADER_BYTES },
    },
    serve as unknown as (request: Http2ServerRequest, response: Http2ServerResponse) => void,
  )
  const http1 = server as unknown as {
    maxHeaderSize: number
    headersTimeout: number
    requestTimeout: number
    keepAliveTimeout: number
    connectionsCheckingInterval: number
  }
  http1.maxHeaderSize = settings.MAX_HEADER_BYTES
  http1.headersTimeout = settings.HTTP_HEADERS_TIMEOUT_MS
  http1.requestTimeout = Math.max(
    settings.HTTP_REQUEST_TIMEOUT_MS,
    settings.HTTP_HEADERS_TIMEOUT_MS,
  )
  http1.keepAliveTimeout = settings.HTTP_KEEP_ALIVE_TIMEOUT_MS
  http1.connectionsCheckingInterval = TIMEOUT_CHECK_INTERVAL_MS
  if (settings.HTTP_CONNECTION_TIMEOUT_MS > 0)
    server.setTimeout(settings.HTTP_CONNECTION_TIMEOUT_MS)
  server.on('session', (session) => {
    session.setTimeout(settings.HTTP_KEEP_ALIVE_TIMEOUT_MS, () => session.close())
  })

  const sockets = new Set<Socket>()
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  Object.assign(server, {
    closeAllConnections() {
      for (const socket of sockets) socket.destroy()
    },
  })
  return server as unknown as Server
}
