import type { IncomingMessage, ServerResponse } from 'node:http'
import formBody from '@fastify/formbody'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Ajv } from 'ajv'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RawServerDefault,
} from 'fastify'
import type { Container } from '../container/index.ts'
import type { SpanExporter } from '../infra/tracing/index.ts'
import { currentContext } from '../shared/request-context.ts'
import { currentTrace } from '../shared/trace-context.ts'
import { AccessLogController } from './access-log.ts'
import {
  compileValidatorsOnFirstUse,
  serializersCompiledOnFirstUse,
} from './compile-on-first-use.ts'
import { registerErrorHandlers } from './error-handler.ts'
import { rejectNonFiniteNumbers } from './finite-numbers.ts'
import { createNodeServer } from './node-server.ts'
import { answerClientError, answerFrameworkError } from './plugins/client-errors.ts'
import { registerLoadShedding } from './plugins/load-shedding.ts'
import { metricsRoutes } from './plugins/metrics-route.ts'
import { registerRateLimits } from './plugins/rate-limits.ts'
import { clearHandlerTimer, registerRequestLifecycle } from './plugins/request-lifecycle.ts'
import { createRequestMetrics } from './plugins/request-metrics.ts'
import { computeSecurityHeaders, registerCors } from './plugins/security.ts'
import { requestIdOf } from './request-id.ts'
import { registerRoutes } from './routes.ts'
import { SECURITY_SCHEMES } from './schemas.ts'

/** The app as routes see it: TypeBox types every handler from its schema. */
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

/**
 * Builds the Fastify app for a container: the Node server and its limits, request context and
 * trace, security headers, CORS, load shedding, logging and metrics, OpenAPI, errors, routes.
 * It does not listen; the serve command and the tests decide where.
 */
export async function createServer(container: Container): Promise<App> {
  const { config, logger, metrics, tracing } = container
  const requestMetrics = config.METRICS_ENABLED ? createRequestMetrics(metrics) : undefined
  const app = Fastify({
    loggerInstance: logger.system as FastifyBaseLogger,
    logController: new AccessLogController(logger.access, (request, reply) => {
      clearHandlerTimer(reply)
      requestMetrics?.observe(
        request.method,
        request.routeOptions.url,
        reply.statusCode,
        reply.elapsedTime / 1000,
      )
      if (tracing) exportServerSpan(tracing, request, reply)
    }),
    // Lines logged through request.log get the request id from the request context (the
    // logger's mixin), so no child logger is built per request.
    childLoggerFactory: (parent) => parent,
    serverFactory: (handler) => createNodeServer(config, handler),
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    genReqId: (request) => currentContext()?.requestId ?? requestIdOf(request),
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    // Fastify's 503 for a request arriving while closing has neither the API's error shape nor
    // Retry-After: the request lifecycle answers it instead (SERVER_SHUTTING_DOWN).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    bodyLimit: config.BODY_LIMIT_BYTES,
    ajv: {
      customOptions: { removeAdditional: true, coerceTypes: 'array', useDefaults: true },
      // Snowflake ids travel as decimal strings (a JS number would lose precision).
      plugins: [
        (ajv: Ajv) => ajv.addFormat('int64', /^-?\d{1,19}$/),
        rejectNonFiniteNumbers,
        // Last: it wraps the compile of the plugins before it.
        compileValidatorsOnFirstUse,
      ],
    },
    schemaController: { compilersFactory: { buildSerializer: serializersCompiledOnFirstUse() } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  // First of all hooks, so even a shed or rate-limited answer carries the ids and headers.
  registerRequestLifecycle(app, {
    readiness: container.readiness,
    staticHeaders: await computeSecurityHeaders(config),
    handlerTimeoutMs: config.HTTP_HANDLER_TIMEOUT_MS,
  })
  await registerLoadShedding(app, config, metrics)
  await registerCors(app, config)

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
  if (config.METRICS_ENABLED) await app.register(metricsRoutes, { metrics })
  await registerRoutes(app, container, userRateLimit)
  return app
}

/** The request as an OTLP server span, when its trace is sampled. */
function exportServerSpan(tracing: SpanExporter, request: FastifyRequest, reply: FastifyReply) {
  const trace = currentTrace()
  // Bit 0 of the flags: the caller (or we, for a new trace) decided to record this trace.
  if (!trace || (Number.parseInt(trace.flags, 16) & 1) === 0) return
  const route = request.routeOptions.url
  const endMs = Date.now()
  tracing.export({
    traceId: trace.traceId,
    spanId: trace.spanId,
    ...(trace.parentSpanId ? { parentSpanId: trace.parentSpanId } : {}),
    name: route ? `${request.method} ${route}` : request.method,
    kind: 'server',
    startMs: endMs - reply.elapsedTime,
    endMs,
    attributes: {
      'http.request.method': request.method,
      ...(route ? { 'http.route': route } : {}),
      'http.response.status_code': reply.statusCode,
      'url.path': request.url.split('?')[0] ?? '/',
      'client.address': request.ip,
      'http.request.id': request.id,
    },
    isError: reply.statusCode >= 500,
  })
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
