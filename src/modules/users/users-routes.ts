import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Authenticated, principalOf } from '../../http/plugins/authenticate.ts'
import { BEARER, errorResponses } from '../../http/schemas.ts'
import { UserPublicSchema } from './users-schemas.ts'
import type { UsersService } from './users-service.ts'

export interface UsersRoutesOptions {
  users: UsersService
  /** preHandlers that admit only signed-in users (and apply the per-user rate limit). */
  authenticated: Authenticated
}

/** /api/users: the signed-in user's own record. */
export const usersRoutes: FastifyPluginAsyncTypebox<UsersRoutesOptions> = async (
  app,
  { users, authenticated },
) => {
  app.get(
    '/api/users/me',
    {
      preHandler: authenticated,
      schema: {
        tags: ['users'],
        summary: 'The signed-in user',
        security: BEARER,
        response: { 200: UserPublicSchema, ...errorResponses(401) },
      },
    },
    async (request) => users.getById(principalOf(request).userId),
  )
}
