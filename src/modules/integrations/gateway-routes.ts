import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../../http/schemas.ts'
import { createGatewayProxy, type GatewayProxyOptions } from './gateway-proxy.ts'
import type { GatewayRoute } from './upstream-config.ts'

export interface GatewayRoutesOptions extends GatewayProxyOptions {
  routes: readonly GatewayRoute[]
  /** Requests per minute per client address on each gateway route. */
  rateLimitPerMinute: number
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

/** The API gateway: each GATEWAY_ROUTES prefix (and everything below it) proxied upstream. */
export const gatewayRoutes: FastifyPluginAsyncTypebox<GatewayRoutesOptions> = async (
  app,
  options,
) => {
  // Bodies pass through as bytes, whatever their type: the upstream parses them, not us.
  // Encapsulated: the parsers of the rest of the app are untouched.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

  const proxy = createGatewayProxy(options)
  for (const route of options.routes) {
    for (const url of [route.prefix, `${route.prefix}/*`]) {
      app.route({
        method: METHODS,
        url,
        config: { rateLimit: { max: options.rateLimitPerMinute, timeWindow: 60_000 } },
        schema: {
          tags: ['gateway'],
          summary: `Proxied to the ${route.prefix} upstream`,
          response: errorResponses(422, 429, 502, 504),
        },
        handler: async (request, reply) => {
          await proxy(route, request, reply)
          // Returned, not just sent: the answer may be a stream still being piped.
          return reply
        },
      })
    }
  }
}
