import Type from 'typebox'

/** A snowflake id: a 64-bit integer sent as a decimal string (a JSON number would lose digits). */
export const IdSchema = Type.String({
  format: 'int64',
  pattern: '^[0-9]{1,19}$',
  examples: ['7212345678901234567'],
})

/** An ISO 8601 UTC timestamp. */
export const TimestampSchema = Type.String({ format: 'date-time' })

/** FastAPI's error shape: `{"detail": "...", "code": "STABLE_CODE"}`. */
export const ErrorSchema = Type.Object(
  { detail: Type.String(), code: Type.String() },
  { description: 'An error with a human message and a stable code' },
)

/** FastAPI's 422 shape: one entry per problem. */
export const ValidationErrorSchema = Type.Object(
  {
    detail: Type.Array(
      Type.Object({
        loc: Type.Array(Type.Union([Type.String(), Type.Integer()])),
        msg: Type.String(),
        type: Type.String(),
      }),
    ),
  },
  { description: 'Invalid input: where, what and which rule' },
)

/** No body (204). */
export const NoContentSchema = Type.Null({ description: 'No content' })

export const IdParamsSchema = Type.Object({ id: IdSchema })

/** The error answers a route documents besides its success. */
export function errorResponses(...statuses: number[]) {
  const responses: Record<number, typeof ErrorSchema | typeof ValidationErrorSchema> = {}
  for (const status of statuses)
    responses[status] = status === 422 ? ValidationErrorSchema : ErrorSchema
  return responses
}

/** The bearer requirement for OpenAPI: a token from the login form (Swagger UI's Authorize) or given as is. */
export const BEARER: Array<Record<string, string[]>> = [{ oauth2: [] }, { bearer: [] }]

/** The security schemes BEARER names. */
export const SECURITY_SCHEMES = {
  oauth2: {
    type: 'oauth2' as const,
    flows: { password: { tokenUrl: '/api/auth/login', scopes: {} } },
  },
  bearer: { type: 'http' as const, scheme: 'bearer', bearerFormat: 'JWT' },
}
