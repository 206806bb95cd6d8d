export { outgoingMetadata } from './call-metadata.ts'
export {
  type ChannelHealth,
  type ChannelStatus,
  createGrpcChannelPool,
  type GrpcChannelPool,
  type GrpcChannelPoolOptions,
  parseGrpcTargets,
} from './channel-pool.ts'
export { GrpcCallError, toServiceError } from './grpc-errors.ts'
export {
  type GrpcServerHandle,
  type GrpcServerOptions,
  type GrpcServiceBinding,
  startGrpcServer,
} from './grpc-server.ts'
export { createHealthService, type HealthService } from './health-service.ts'
export {
  HEALTH_SERVICE_NAME,
  type ListUsersRequest,
  type ListUsersResponse,
  protoServices,
  type ServingStatus,
  USER_SERVICE_NAME,
  type User,
} from './proto-definitions.ts'
export { type CallContext, type CallGuard, unaryHandler } from './server-calls.ts'
export { callUnary, type UnaryCallOptions } from './unary-call.ts'
export { createUserClient, type UserCallOptions, type UserClient } from './user-client.ts'
