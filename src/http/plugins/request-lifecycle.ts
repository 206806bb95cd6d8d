import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Readiness } from '../../container/index.ts'
import { currentTrace, formatTraceparent } from '../../shared/trace-context.ts'
import type { App } from '../server.ts'

declare module 'fastify' {
  interface FastifyReply {
    /** The handler timeout of this request; cleared when the response has gone out. */
    handlerTimer: NodeJS.Timeout | null
  }
}

/** Retry-After of a request refused while closing: another replica can take it at once. */
export const CLOSING_RETRY_AFTER_SECONDS = 1

export interface RequestLifecycleOptions {
  readiness: Pick<Readiness, 'isDraining'>
  /** Set on every response (the security headers). */
  staticHeaders: Readonly<Record<string, string>>
  /** 0: no limit. */
  handlerTimeoutMs: number
}

/**
 * The one onRequest hook every request runs, first: the security headers, X-Request-ID and
 * `traceparent` (our span of the caller's trace) on the response; `Connection: close` while the
 * process drains, so keep-alive clients reconnect to a replica that stays; and the handler
 * timeout. One callback-style hook instead of several: each hook costs on every request.
 *
 * Once the server has begun to close (`app.close()`, after the drain pause), a request that
 * still arrives on an open keep-alive connection is not started: it gets 503
 * `SERVER_SHUTTING_DOWN` with `Connection: close` and Retry-After, so the client retries it on
 * another replica. Requests already received by then run to their end.
 *
 * The handler timeout counts until the answer starts, not until it ends: a route that has not
 * sent its headers within HTTP_HANDLER_TIMEOUT_MS gets 503, while a stream that has started
 * (a CSV export, SSE) runs as long as it needs. Fastify's own `handlerTimeout` would cut those.
 */
export function registerRequestLifecycle(app: App, options: RequestLifecycleOptions): void {
  const { readiness, staticHeaders, handlerTimeoutMs } = options
  const timedOut = JSON.stringify({
    detail: `The server did not answer within ${handlerTimeoutMs} ms`,
    code: 'HANDLER_TIMEOUT',
  })
  const shuttingDown = JSON.stringify({
    detail: `The server is shutting down; retry in ${CLOSING_RETRY_AFTER_SECONDS} second`,
    code: 'SERVER_SHUTTING_DOWN',
  })
  let isClosing = false
  app.addHook('preClose', (done) => {
    isClosing = true
    done()
  })
  app.decorateReply('handlerTimer', null)
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(staticHeaders)
    reply.header('x-request-id', request.id)
    const trace = currentTrace()
    if (trace) reply.header('traceparent', formatTraceparent(trace))
    if (isClosing) {
      // HTTP/2 has no Connection header (the session's GOAWAY says it).
      if (request.raw.httpVersionMajor !== 2) reply.header('connection', 'close')
      // Sent as JSON text: the route's own response schemas must not reshape it.
      reply
        .code(503)
        .header('retry-after', String(CLOSING_RETRY_AFTER_SECONDS))
        .type('application/json; charset=utf-8')
        .send(shuttingDown)
      return
    }
    if (readiness.isDraining) reply.header('connection', 'close')
    // A WebSocket upgrade hands the socket over and never "answers": no timeout for it. The
    // timer is unref'd so a request the client abandons cannot keep a closing process alive.
    if (handlerTimeoutMs > 0 && request.headers.upgrade === undefined) {
      reply.handlerTimer = setTimeout(onHandlerTimeout, handlerTimeoutMs, request, reply).unref()
    }
    done()
  })

  function onHandlerTimeout(request: FastifyRequest, reply: FastifyReply): void {
    reply.handlerTimer = null
    if (reply.sent || reply.raw.headersSent || request.raw.destroyed) return
    request.log.warn(
      { route: request.routeOptions.url, timeoutMs: handlerTimeoutMs },
      'handler timed out: answered 503',
    )
    // Sent as JSON text: the route's own response schemas must not reshape it.
    reply.code(503).type('application/json; charset=utf-8').send(timedOut)
  }
}

/** Ends the handler timeout of a finished request. */
export function clearHandlerTimer(reply: FastifyReply): void {
  if (reply.handlerTimer !== null) {
    clearTimeout(reply.handlerTimer)
    reply.handlerTimer = null
  }
}
