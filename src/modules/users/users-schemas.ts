import Type from 'typebox'
import { IdSchema, TimestampSchema } from '../../http/schemas.ts'

/** A user as clients see it: never the password hash. */
export const UserPublicSchema = Type.Object(
  { id: IdSchema, username: Type.String(), created_at: TimestampSchema },
  { description: 'A user' },
)
export type UserPublic = Type.Static<typeof UserPublicSchema>

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{2,49}$'
