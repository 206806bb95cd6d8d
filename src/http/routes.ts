import type { Container } from '../container/index.ts'
import { authRoutes } from '../modules/auth/auth-routes.ts'
import { healthRoutes } from '../modules/health/health-routes.ts'
import { aggregateRoutes, computeRoutes, gatewayRoutes } from '../modules/integrations/index.ts'
import { internalRoutes } from '../modules/internal/index.ts'
import { itemsRoutes } from '../modules/items/items-routes.ts'
import { ordersRoutes } from '../modules/orders/index.ts'
import { pagesRoutes } from '../modules/pages/pages-routes.ts'
import { tasksRoutes } from '../modules/tasks/index.ts'
import { usersRoutes } from '../modules/users/users-routes.ts'
import { type Authenticated, requireUser } from './plugins/authenticate.ts'
import type { UserRateLimit } from './plugins/rate-limits.ts'
import { registerRealtime } from './realtime/realtime-routes.ts'
import { createSseStreams } from './realtime/sse.ts'
import type { App } from './server.ts'

/** The route map: every module's routes, registered one by one so the whole API reads here. */
export async function registerRoutes(
  app: App,
  container: Container,
  userRateLimit: UserRateLimit,
): Promise<void> {
  const { auth, users, items } = container.services
  const authenticated: Authenticated = [requireUser(auth), userRateLimit]
  // First: WebSocket support must reach every route registered after it. SSE streams are shared:
  // the realtime routes end them at shutdown, and modules (orders) stream through them.
  const sse = createSseStreams({ pubsub: container.pubsub })
  await registerRealtime(app, { pubsub: container.pubsub, auth, sse, metrics: container.metrics })
  await app.register(healthRoutes, { readiness: container.readiness })
  await app.register(authRoutes, { auth, authenticated })
  await app.register(usersRoutes, { users, authenticated })
  await app.register(itemsRoutes, {
    items,
    authenticated,
    itemsExport: container.services.itemsExport,
  })
  await app.register(ordersRoutes, { orders: container.services.orders, authenticated, sse })
  await app.register(tasksRoutes, { tasks: container.services.tasks, authenticated })
  await app.register(pagesRoutes, { items })
  await registerIntegrationRoutes(app, container, authenticated)
}

/** The gateway, /api/aggregate, /api/compute and the HMAC-signed /internal routes. */
async function registerIntegrationRoutes(
  app: App,
  container: Container,
  authenticated: Authenticated,
): Promise<void> {
  const { config, integrations } = container
  await app.register(internalRoutes, {
    users: container.services.users,
    verifier: integrations.signatures,
  })
  await app.register(aggregateRoutes, {
    aggregate: integrations.aggregate,
    deadlineMs: config.AGGREGATE_DEADLINE_MS,
  })
  await app.register(computeRoutes, {
    compute: integrations.compute,
    authenticated,
    maxRunMs: config.HTTP_HANDLER_TIMEOUT_MS,
  })
  await app.register(gatewayRoutes, {
    routes: integrations.gatewayRoutes,
    http: integrations.http,
    cache: container.cache,
    timeoutMs: config.GATEWAY_TIMEOUT_MS,
    cacheTtlSeconds: config.GATEWAY_CACHE_TTL_SECONDS,
    rateLimitPerMinute: config.GATEWAY_RATE_LIMIT_PER_MINUTE,
    logger: container.logger.system,
  })
}
