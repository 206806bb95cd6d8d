import { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'

/** Told once per completed request, after the response has gone out (metrics, timers). */
export type RequestCompleted = (request: FastifyRequest, reply: FastifyReply) => void

/**
 * Fastify's own request logging, redirected: no "incoming request" line, and one JSON access
 * line per completed request on the access logger. Fastify calls it once per response anyway,
 * so `onCompleted` rides along (request metrics) instead of costing an onResponse hook.
 */
export class AccessLogController extends LogController {
  readonly #access: Logger
  readonly #onCompleted: RequestCompleted | undefined

  constructor(access: Logger, onCompleted?: RequestCompleted) {
    super({ requestIdLogLabel: 'req_id' })
    this.#access = access
    this.#onCompleted = onCompleted
  }

  override incomingRequest(): void {}

  override routeNotFound(): void {}

  override requestCompleted(
    error: FastifyError | null,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    this.#onCompleted?.(request, reply)
    // The line is built only when it will be written: with access logs off, a request pays nothing.
    if (!this.#access.isLevelEnabled(error ? 'error' : 'info')) return
    const line = {
      req_id: request.id,
      method: request.method,
      url: request.url,
      route: request.routeOptions.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
    }
    if (error) this.#access.error({ ...line, err: error }, 'request errored')
    else this.#access.info(line)
  }
}
