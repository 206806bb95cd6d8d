export { aggregateRoutes } from './aggregate-routes.ts'
export { type AggregateService, createAggregateService } from './aggregate-service.ts'
export { computeRoutes } from './compute-routes.ts'
export { type ComputeService, createComputeService } from './compute-service.ts'
export { gatewayRoutes } from './gateway-routes.ts'
export { startGrpcEndpoint } from './grpc-endpoint.ts'
export {
  type GatewayRoute,
  type NamedUpstream,
  parseGatewayRoutes,
  parseNamedUpstreams,
} from './upstream-config.ts'
export { createUsersDirectory } from './users-directory.ts'
export type { UsersDirectory } from './users-grpc-service.ts'
