import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Authenticated, principalOf } from '../../http/plugins/authenticate.ts'
import { BEARER, errorResponses, NoContentSchema } from '../../http/schemas.ts'
import { UserPublicSchema } from '../users/users-schemas.ts'
import { LoginSchema, RegisterSchema, TokenSchema } from './auth-schemas.ts'
import type { AuthService } from './auth-service.ts'

/** /api/auth: register, login (JSON or OAuth2 password form), logout, logout everywhere. */
export interface AuthRoutesOptions {
  auth: AuthService
  /** preHandlers that admit only signed-in users (and apply the per-user rate limit). */
  authenticated: Authenticated
}

export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (
  app,
  { auth, authenticated },
) => {
  const tags = ['auth']

  app.post(
    '/api/auth/register',
    {
      schema: {
        tags,
        summary: 'Create an account',
        body: RegisterSchema,
        response: { 201: UserPublicSchema, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await auth.register(request.body.username, request.body.password)),
  )

  app.post(
    '/api/auth/login',
    {
      schema: {
        tags,
        summary: 'Exchange a username and password for a bearer token',
        description:
          "Accepts JSON or the OAuth2 password form (Swagger UI's Authorize uses the form).",
        body: LoginSchema,
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        response: { 200: TokenSchema, ...errorResponses(401, 422, 429) },
      },
    },
    async (request) => auth.login(request.body.username, request.body.password),
  )

  app.post(
    '/api/auth/logout',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Revoke this token',
        security: BEARER,
        response: { 204: NoContentSchema, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      await auth.logout(principalOf(request))
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/api/auth/logout-all',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Revoke every token of this user (end all sessions)',
        security: BEARER,
        response: { 204: NoContentSchema, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      await auth.logoutAll(principalOf(request))
      return reply.code(204).send(null)
    },
  )
}
