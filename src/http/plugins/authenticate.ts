import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../../shared/errors.ts'

/** Who is calling, as proven by a valid, unrevoked token. */
export interface Principal {
  userId: string
  jti: string
  /** Token expiry, seconds since the epoch. */
  expiresAt: number
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

export interface Authenticator {
  authenticate(token: string): Promise<Principal>
}

/** The preHandlers a protected route runs: authentication first, then per-user checks. */
export type Authenticated = Array<(request: FastifyRequest, reply: FastifyReply) => Promise<void>>

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i

/** A preHandler that admits only requests with a valid bearer token and sets request.principal. */
export function requireUser(authenticator: Authenticator) {
  return async function requireUserHook(
    request: FastifyRequest,
    _reply: FastifyReply,
  ): Promise<void> {
    const header = request.headers.authorization
    const match = header ? BEARER.exec(header) : null
    if (!match?.[1])
      throw new AppError('unauthorized', 'AUTH_NOT_AUTHENTICATED', 'Not authenticated')
    request.principal = await authenticator.authenticate(match[1])
  }
}

/** The principal set by requireUser; a route without the hook is a programming error. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route reads the principal without the requireUser hook')
  return request.principal
}
