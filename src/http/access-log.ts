import { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'

/**
 * Fastify's own request logging, redirected: no "incoming request" line, and one JSON access
 * line per completed request on the access logger.
 */
export class AccessLogController extends LogController {
  readonly #access: Logger

  constructor(access: Logger) {
    super({ requestIdLogLabel: 'req_id' })
    this.#access = access
  }

  override incomingRequest(): void {}

  override routeNotFound(): void {}

  override requestCompleted(
    error: FastifyError | null,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
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
