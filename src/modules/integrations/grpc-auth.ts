import type { Metadata } from '@grpc/grpc-js'
import type { CallGuard } from '../../infra/grpc/index.ts'
import { grpcNotAuthenticated } from './integrations-errors.ts'

export interface GrpcAuthOptions {
  /** Verifies an access token (the auth service's bearer check); throws when it is not valid. */
  authenticate: (token: string) => Promise<unknown>
  /** App ids allowed to call; empty: any well-formed one. */
  allowedAppIds: ReadonlySet<string>
}

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/**
 * The check every UserService call passes: `authorization: Bearer <token>` with a valid,
 * unrevoked access token, and an `x-app-id` naming the calling application (from the allowed
 * list when there is one). Anything else is UNAUTHENTICATED.
 */
export function createGrpcAuthGuard(options: GrpcAuthOptions): CallGuard {
  return async (metadata: Metadata) => {
    const appId = single(metadata, 'x-app-id')
    if (appId === undefined || !APP_ID.test(appId))
      throw grpcNotAuthenticated('x-app-id is missing')
    if (options.allowedAppIds.size > 0 && !options.allowedAppIds.has(appId))
      throw grpcNotAuthenticated(`app id "${appId}" is not allowed`)
    const header = single(metadata, 'authorization')
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1]
    if (token === undefined) throw grpcNotAuthenticated('a bearer token is missing')
    try {
      await options.authenticate(token)
    } catch {
      throw grpcNotAuthenticated('the token is invalid or revoked')
    }
  }
}

function single(metadata: Metadata, key: string): string | undefined {
  const values = metadata.get(key)
  return values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined
}
