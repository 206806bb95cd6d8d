import { fileURLToPath } from 'node:url'
import {
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
} from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

/**
 * The services of `proto/`, loaded at run time with proto-loader (no generated code), and the
 * TypeScript shapes of their messages. Options: field names as written (snake_case, as in the
 * JSON API), enums as their names, 64-bit integers as strings, defaults filled in.
 */

const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url))

export const USER_SERVICE_NAME = 'servekit.users.v1.UserService'
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health'

export interface User {
  id: string
  username: string
  /** ISO 8601 UTC. */
  created_at: string
}

export interface GetUserRequest {
  id: string
}

export interface ListUsersRequest {
  /** 0: the default page size. */
  page_size: number
  /** Empty for the first page. */
  page_token: string
}

export interface ListUsersResponse {
  users: User[]
  /** Empty on the last page. */
  next_page_token: string
}

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN'

export interface HealthCheckRequest {
  service: string
}

export interface HealthCheckResponse {
  status: ServingStatus
}

export interface ProtoServices {
  /** servekit.users.v1.UserService: its definition (`.service`) and client constructor. */
  UserService: ServiceClientConstructor
  /** grpc.health.v1.Health. */
  Health: ServiceClientConstructor
}

let loaded: ProtoServices | undefined

/** Reads the .proto files on first use (never at import) and keeps the result. */
export function protoServices(): ProtoServices {
  if (loaded) return loaded
  const definition = loadSync(['users.proto', 'grpc/health/v1/health.proto'], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  })
  const root = loadPackageDefinition(definition)
  loaded = {
    UserService: serviceAt(root, USER_SERVICE_NAME),
    Health: serviceAt(root, HEALTH_SERVICE_NAME),
  }
  return loaded
}

function serviceAt(root: GrpcObject, fullName: string): ServiceClientConstructor {
  let node: unknown = root
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)[part]
  if (typeof node !== 'function' || !('service' in node))
    throw new Error(`the protos define no service ${fullName}`)
  return node as ServiceClientConstructor
}
