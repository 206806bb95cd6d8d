import type { Logger } from 'pino'
import {
  type CallGuard,
  type GrpcServiceBinding,
  type ListUsersRequest,
  type ListUsersResponse,
  protoServices,
  type User,
  unaryHandler,
} from '../../infra/grpc/index.ts'
import { grpcBadArgument } from './integrations-errors.ts'

/** The user reads the gRPC UserService needs; the container adapts the users module to it. */
export interface UsersDirectory {
  /** The public user, or an AppError('not_found'). */
  getById(id: string): Promise<User>
  /** Up to `limit` live users with an id above `afterId` (all when undefined), in id order. */
  listAfter(afterId: string | undefined, limit: number): Promise<User[]>
}

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 1000
const ID = /^[0-9]{1,19}$/
const TOKEN_PREFIX = 'after:'

/** servekit.users.v1.UserService over a UsersDirectory; every call passes `guard` first. */
export function createUsersGrpcService(deps: {
  directory: UsersDirectory
  guard: CallGuard
  logger?: Logger
}): GrpcServiceBinding {
  const { directory } = deps
  const options = { guard: deps.guard, logger: deps.logger }
  return {
    definition: protoServices().UserService.service,
    implementation: {
      GetUser: unaryHandler<{ id: string }, User>(
        'GetUser',
        async ({ id }) => {
          if (!ID.test(id)) throw grpcBadArgument('id must be a decimal snowflake id')
          return directory.getById(id)
        },
        options,
      ),
      ListUsers: unaryHandler<ListUsersRequest, ListUsersResponse>(
        'ListUsers',
        async (request, { signal }) => {
          if (request.page_size < 0) throw grpcBadArgument('page_size must not be negative')
          // AIP-158: 0 means the default, and a size above the maximum is reduced to it.
          const size = Math.min(request.page_size || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
          const afterId = decodePageToken(request.page_token)
          const rows = await directory.listAfter(afterId, size + 1)
          signal.throwIfAborted()
          const users = rows.slice(0, size)
          const last = users.at(-1)
          return {
            users,
            next_page_token: rows.length > size && last ? encodePageToken(last.id) : '',
          }
        },
        options,
      ),
    },
  }
}

/** Page tokens are opaque to clients: base64url of the last id served. */
export function encodePageToken(lastId: string): string {
  return Buffer.from(`${TOKEN_PREFIX}${lastId}`).toString('base64url')
}

function decodePageToken(token: string): string | undefined {
  if (token === '') return undefined
  const text = Buffer.from(token, 'base64url').toString('utf8')
  const id = text.startsWith(TOKEN_PREFIX) ? text.slice(TOKEN_PREFIX.length) : ''
  if (!ID.test(id)) throw grpcBadArgument('page_token is not one this service gave out')
  return id
}
