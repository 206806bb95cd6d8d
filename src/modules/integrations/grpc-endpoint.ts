import type { Logger } from 'pino'
import {
  createHealthService,
  type GrpcServerHandle,
  startGrpcServer,
  USER_SERVICE_NAME,
} from '../../infra/grpc/index.ts'
import { createGrpcAuthGuard } from './grpc-auth.ts'
import { createUsersGrpcService, type UsersDirectory } from './users-grpc-service.ts'

export interface GrpcEndpointOptions {
  host: string
  port: number
  directory: UsersDirectory
  authenticate: (token: string) => Promise<unknown>
  allowedAppIds: ReadonlySet<string>
  /** While true, health answers NOT_SERVING (the process drains). */
  isDraining: () => boolean
  shutdownTimeoutMs: number
  logger?: Logger
}

/**
 * servekit's gRPC server: the UserService (token and app id required) and the standard health
 * service, which answers SERVING for "" and the UserService until the process drains.
 */
export async function startGrpcEndpoint(options: GrpcEndpointOptions): Promise<GrpcServerHandle> {
  const served = new Set(['', USER_SERVICE_NAME])
  const health = createHealthService({
    statusOf: (service) =>
      served.has(service) ? (options.isDraining() ? 'NOT_SERVING' : 'SERVING') : undefined,
  })
  const users = createUsersGrpcService({
    directory: options.directory,
    guard: createGrpcAuthGuard({
      authenticate: options.authenticate,
      allowedAppIds: options.allowedAppIds,
    }),
    logger: options.logger,
  })
  return startGrpcServer({
    host: options.host,
    port: options.port,
    services: [health, users],
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    beforeClose: () => health.shutdown(),
  })
}
