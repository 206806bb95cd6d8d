import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import formBody from '@fastify/formbody'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Ajv } from 'ajv'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawServerDefault,
} from 'fastify'
import type { Container } from '../container/index.ts'
import { currentContext, runWithContext } from '../shared/request-context.ts'
import { AccessLogController } from './access-log.ts'
import { registerErrorHandlers } from './error-handler.ts'
import { registerRateLimits } from './plugins/rate-limits.ts'
import { requestIdOf } from './request-id.ts'
import { registerRoutes } from './routes.ts'
import { SECURITY_SCHEMES } from './schemas.ts'

/**
 * Builds the Fastify app for a container: request context, logging, OpenAPI, errors, routes.
 * It does not listen; the serve command and the tests decide where.
 */
/** The app as routes see it: TypeBox types every handler from its schema. */
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

export async function createServer(container: Container): Promise<App> {
  const { config, logger } = container
  const app = Fastify({
    loggerInstance: logger.system as FastifyBaseLogger,
    logController: new AccessLogController(logger.access),
    // Lines logged through request.log get the request id from the request context (the
    // logger's mixin), so no child logger is built per request.
    childLoggerFactory: (parent) => parent,
    // Every request runs inside its own context, which logs, queries and outgoing calls read.
    serverFactory: (handler) =>
      createHttpServer((request: IncomingMessage, response: ServerResponse) => {
        runWithContext({ requestId: requestIdOf(request) }, () => handler(request, response))
      }),
    genReqId: (request) => currentContext()?.requestId ?? requestIdOf(request),
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    bodyLimit: 1024 * 1024,
    ajv: {
      customOptions: { removeAdditional: true, coerceTypes: 'array', useDefaults: true },
      // Snowflake ids travel as decimal strings (a JS number would lose precision).
      plugins: [(ajv: Ajv) => ajv.addFormat('int64', /^-?\d{1,19}$/)],
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  registerErrorHandlers(app)
  await app.register(formBody)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: config.APP_NAME, version: '0.1.0', description: 'servekit API' },
      components: { securitySchemes: SECURITY_SCHEMES },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  const userRateLimit = await registerRateLimits(app, config, container.redis?.client)
  await registerRoutes(app, container, userRateLimit)
  return app
}

/** TRUST_PROXY as Fastify takes it: a boolean, the hops to trust, or addresses and CIDRs. */
function parseTrustProxy(
  value: string,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'true' || value === 'false') return value === 'true'
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return value.split(',')
}
