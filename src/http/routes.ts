import type { Container } from '../container/index.ts'
import { healthRoutes } from '../modules/health/health-routes.ts'
import type { App } from './server.ts'

/** The route map: every module's routes, registered one by one so the whole API reads here. */
export async function registerRoutes(app: App, container: Container): Promise<void> {
  await app.register(healthRoutes, { readiness: container.readiness })
}
