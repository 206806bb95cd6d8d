import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Metrics } from '../../infra/metrics/index.ts'
import { AppError } from '../../shared/errors.ts'

/**
 * GET /metrics in the Prometheus text format: this process's metrics, or in cluster mode the
 * sum over every worker (see infra/metrics/cluster-metrics.ts). Never rate-limited, so a
 * scraper is not locked out; keep it off the public ingress.
 */
export const metricsRoutes: FastifyPluginAsyncTypebox<{ metrics: Metrics }> = async (
  app,
  { metrics },
) => {
  app.get(
    '/metrics',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics',
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) => {
      let text: string
      try {
        text = await metrics.scrape()
      } catch (error) {
        throw new AppError('unavailable', 'METRICS_UNAVAILABLE', 'Metrics are unavailable', {
          cause: error,
        })
      }
      return reply.type(metrics.contentType).send(text)
    },
  )
}
