import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Authenticated } from '../../http/plugins/authenticate.ts'
import { BEARER, errorResponses } from '../../http/schemas.ts'
import { ComputeRequestSchema, ComputeResultSchema } from './compute-schemas.ts'
import type { ComputeService } from './compute-service.ts'

export interface ComputeRoutesOptions {
  compute: ComputeService
  /** Signed-in users only: CPU time is the costliest thing we hand out. */
  authenticated: Authenticated
  /** A task still running after this long is stopped (the handler timeout has answered 503). */
  maxRunMs: number
}

/** POST /api/compute: CPU-bound work on worker threads. */
export const computeRoutes: FastifyPluginAsyncTypebox<ComputeRoutesOptions> = async (
  app,
  { compute, authenticated, maxRunMs },
) => {
  app.post(
    '/api/compute',
    {
      preHandler: authenticated,
      schema: {
        tags: ['integrations'],
        summary: 'Run a CPU-bound task on the worker-thread pool',
        security: BEARER,
        body: ComputeRequestSchema,
        response: { 200: ComputeResultSchema, ...errorResponses(401, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      // Nobody waits for the answer once the client has gone: free the thread.
      const gone = new AbortController()
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort()
      })
      const signals = maxRunMs > 0 ? [gone.signal, AbortSignal.timeout(maxRunMs)] : [gone.signal]
      return compute.run(request.body, AbortSignal.any(signals))
    },
  )
}
