import { readFileSync } from 'node:fs'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
// node:http and node:http2 are taken with process.getBuiltinModule, not imported: an ES import
// of either reads every export, and node:http's lazy ones load Node's bundled undici (about
// 50 ms of every start, for fetch and WebSocket classes the server never uses).
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
 * While closing, a keep-alive connection counts as idle (and is closed) only after this long
 * with no request in flight and no byte received: a client that just sent its next request on
 * it must get an answer, not a reset.
 */
export const QUIET_BEFORE_CLOSE_MS = 250

/** While closing, how often connections are looked at for quiet. */
const CLOSE_SWEEP_MS = 100

/**
 * The Node server under Fastify. Plain HTTP/1.1, or with TLS_CERT_FILE and TLS_KEY_FILE HTTPS
 * with HTTP/2 (ALPN; HTTP/1.1 clients are served on the same port). Every limit is set here on
 * purpose, since with a server factory Fastify sets none, and Node's defaults are either off or
 * loose: the request head size (431 beyond it), the time to send the headers and the whole
 * request (408), how long an idle keep-alive connection stays, and the socket inactivity timeout.
 *
 * Each request runs inside its own request context (request id and W3C trace), which logs,
 * queries, outgoing calls and jobs read.
 *
 * Closing tells every request in flight that has not been answered yet `Connection: close`, and
 * closes a keep-alive connection only once it has been quiet for QUIET_BEFORE_CLOSE_MS, never
 * one with a request in flight, and goes on looking until the last one has gone: Node's
 * own `closeIdleConnections` closes, once, any connection between two requests, resetting a
 * request the client has already sent on it, and then leaves the connections that were busy
 * open until their keep-alive timeout.
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

  const server = process.getBuiltinModule('node:http').createServer(
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
  closeOnlyQuietConnections(server)
  return server
}

/** What a connection is doing, as far as closing it is concerned. */
interface ConnectionActivity {
  /** The answers of the requests in flight on it. */
  inFlight: Set<ServerResponse>
  /** Bytes received when a sweep last looked; a change means a request is arriving. */
  bytesRead: number
  /** When a sweep first saw it quiet at these bytes, if one has. */
  quietSince: number | undefined
}

/**
 * Replaces the server's `closeIdleConnections` with one that spares busy or recent connections.
 * Quiet is what two sweeps at least QUIET_BEFORE_CLOSE_MS apart both see: no request in flight
 * and no new byte. Not the time since the last answer: on a busy event loop the next request
 * can sit unread in the socket's buffer for longer than that, and Node reads it between sweeps.
 */
function closeOnlyQuietConnections(server: Server): void {
  const connections = new Map<Socket, ConnectionActivity>()
  server.on('connection', (socket: Socket) => {
    connections.set(socket, { inFlight: new Set(), bytesRead: 0, quietSince: undefined })
    socket.once('close', () => connections.delete(socket))
  })
  // An upgraded socket (WebSocket) is no longer HTTP: the realtime routes close it.
  server.on('upgrade', (request: IncomingMessage) => connections.delete(request.socket))
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const activity = connections.get(request.socket)
    if (!activity) return
    activity.inFlight.add(response)
    activity.quietSince = undefined
    response.once('close', () => activity.inFlight.delete(response))
  })
  const close = server.close.bind(server)
  server.close = (callback) => {
    // Answers not started yet say Connection: close, so no client sends another request on
    // a connection that is about to go (which would race with its closing).
    for (const { inFlight } of connections.values()) {
      for (const response of inFlight) if (!response.headersSent) response.shouldKeepAlive = false
    }
    const sweep = setInterval(() => server.closeIdleConnections(), CLOSE_SWEEP_MS).unref()
    server.once('close', () => clearInterval(sweep))
    return close(callback)
  }
  server.closeIdleConnections = () => {
    const now = performance.now()
    for (const [socket, activity] of connections) {
      if (activity.inFlight.size > 0) continue
      if (socket.bytesRead !== activity.bytesRead || activity.quietSince === undefined) {
        activity.bytesRead = socket.bytesRead
        activity.quietSince = now
      } else if (now - activity.quietSince >= QUIET_BEFORE_CLOSE_MS) {
        socket.destroy()
      }
    }
  }
}

/**
 * HTTPS + HTTP/2 with HTTP/1.1 fallback. The HTTP/1.1 side reads the same limits from the
 * server's properties; HTTP/2 sessions close (GOAWAY) after the keep-alive timeout of idleness.
 * The server is returned as an http.Server: Fastify and the serve command use only what both
 * have, plus `closeAllConnections`, added here (the HTTP/2 server lacks it).
 */
function createTlsServer(settings: NodeServerSettings, serve: Handler): Server {
  const server = process.getBuiltinModule('node:http2').createSecureServer(
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
