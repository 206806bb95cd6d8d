import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { errorResponses, IdParamsSchema, IdSchema } from '../../http/schemas.ts'
import { isAppError } from '../../shared/errors.ts'
import type { SignatureVerifier } from '../../shared/hmac-signing.ts'
import { UserPublicSchema } from '../users/users-schemas.ts'
import type { UsersService } from '../users/users-service.ts'

export interface InternalRoutesOptions {
  users: Pick<UsersService, 'getById'>
  verifier: SignatureVerifier
}

const BatchBodySchema = Type.Object(
  { ids: Type.Array(IdSchema, { minItems: 1, maxItems: 100, uniqueItems: true }) },
  { additionalProperties: false },
)

const BatchAnswerSchema = Type.Object({
  users: Type.Array(UserPublicSchema),
  missing: Type.Array(IdSchema),
})

/** What every signed route documents: 401 for any bad signature, without saying which check failed. */
const SIGNED = {
  tags: ['internal'],
  description:
    'Signed with HMAC-SHA256: X-Key-Id, X-Timestamp, X-Nonce and X-Signature headers over the ' +
    'method, path with query, timestamp, nonce and body hash (see src/shared/hmac-signing.ts).',
}

/**
 * /internal: service-to-service reads, signed with HMAC (shared/hmac-signing.ts). A request
 * whose signature is wrong, stale or replayed gets 401 before anything else runs (even input
 * validation: an unsigned caller learns nothing). The signature covers the raw body bytes,
 * so this scope keeps them: its content-type parser reads every body as a Buffer first.
 */
export const internalRoutes: FastifyPluginAsyncTypebox<InternalRoutesOptions> = async (
  app,
  { users, verifier },
) => {
  const rawBodies = new WeakMap<FastifyRequest, Buffer>()
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    rawBodies.set(request, bytes)
    if (bytes.length === 0) return done(null, undefined)
    if (!/^application\/(.+\+)?json\b/i.test(request.headers['content-type'] ?? '')) {
      return done(null, bytes)
    }
    try {
      done(null, JSON.parse(bytes.toString('utf8')))
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400 }), undefined)
    }
  })

  // preValidation: after the body is read (the signature needs it), before the schema checks.
  app.addHook('preValidation', async (request) => {
    try {
      await verifier.verify({
        method: request.method,
        path: request.url,
        body: rawBodies.get(request),
        headers: request.headers,
      })
    } catch (error) {
      if (isAppError(error))
        request.log.warn(
          { reason: (error.details as { reason?: string })?.reason },
          'refused signature',
        )
      throw error
    }
  })

  app.get(
    '/internal/users/:id',
    {
      schema: {
        ...SIGNED,
        summary: 'A user, for other services (HMAC-signed)',
        params: IdParamsSchema,
        response: { 200: UserPublicSchema, ...errorResponses(401, 404, 422) },
      },
    },
    async (request) => users.getById(request.params.id),
  )

  app.post(
    '/internal/users/batch',
    {
      schema: {
        ...SIGNED,
        summary: 'Several users at once, for other services (HMAC-signed)',
        body: BatchBodySchema,
        response: { 200: BatchAnswerSchema, ...errorResponses(401, 422) },
      },
    },
    async (request) => {
      const found = await Promise.all(
        request.body.ids.map((id) =>
          users.getById(id).catch((error: unknown) => {
            if (isAppError(error) && error.kind === 'not_found') return undefined
            throw error
          }),
        ),
      )
      return {
        users: found.filter((user) => user !== undefined),
        missing: request.body.ids.filter((_id, index) => found[index] === undefined),
      }
    },
  )
}
