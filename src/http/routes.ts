import type { Container } from '../container/index.ts'
import { authRoutes } from '../modules/auth/auth-routes.ts'
import { healthRoutes } from '../modules/health/health-routes.ts'
import { itemsRoutes } from '../modules/items/items-routes.ts'
import { usersRoutes } from '../modules/users/users-routes.ts'
import { type Authenticated, requireUser } from './plugins/authenticate.ts'
import type { UserRateLimit } from './plugins/rate-limits.ts'
import type { App } from './server.ts'

/** The route map: every module's routes, registered one by one so the whole API reads here. */
export async function registerRoutes(
  app: App,
  container: Container,
  userRateLimit: UserRateLimit,
): Promise<void> {
  const { auth, users, items } = container.services
  const authenticated: Authenticated = [requireUser(auth), userRateLimit]
  await app.register(healthRoutes, { readiness: container.readiness })
  await app.register(authRoutes, { auth, authenticated })
  await app.register(usersRoutes, { users, authenticated })
  await app.register(itemsRoutes, { items, authenticated })
}
