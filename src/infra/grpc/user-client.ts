import type { Client } from '@grpc/grpc-js'
import { outgoingMetadata } from './call-metadata.ts'
import type { GrpcChannelPool } from './channel-pool.ts'
import {
  type ListUsersRequest,
  type ListUsersResponse,
  protoServices,
  type User,
} from './proto-definitions.ts'
import { callUnary } from './unary-call.ts'

export interface UserClientOptions {
  /** The pool's target name for the UserService; default "users". */
  target?: string
  /** Deadline of a call that sets none. */
  deadlineMs: number
  /** The bearer token of a call that passes none (e.g. a service account's). */
  token?: () => string | undefined
}

export interface UserCallOptions {
  deadlineMs?: number
  /** Sent as `authorization: Bearer <token>`. */
  token?: string
  /** Aborting it cancels the call. */
  signal?: AbortSignal
}

/** servekit.users.v1.UserService, typed. Failures reject with GrpcCallError. */
export interface UserClient {
  getUser(id: string, options?: UserCallOptions): Promise<User>
  listUsers(
    request?: Partial<ListUsersRequest>,
    options?: UserCallOptions,
  ): Promise<ListUsersResponse>
}

/** A typed UserService client on a pooled channel, with deadline, token and app id per call. */
export function createUserClient(pool: GrpcChannelPool, options: UserClientOptions): UserClient {
  const target = options.target ?? 'users'
  // async: a missing target rejects like any failed call instead of throwing.
  const call = async <Response>(method: string, request: unknown, callOptions: UserCallOptions) =>
    callUnary<Response>(
      pool.client<Client>(target, protoServices().UserService),
      method,
      request,
      outgoingMetadata({ appId: pool.appId, token: callOptions.token ?? options.token?.() }),
      { deadlineMs: callOptions.deadlineMs ?? options.deadlineMs, signal: callOptions.signal },
    )
  return {
    getUser: (id, callOptions = {}) => call<User>('GetUser', { id }, callOptions),
    listUsers: (request = {}, callOptions = {}) =>
      call<ListUsersResponse>(
        'ListUsers',
        { page_size: request.page_size ?? 0, page_token: request.page_token ?? '' },
        callOptions,
      ),
  }
}
