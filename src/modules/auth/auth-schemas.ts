import Type from 'typebox'
import { USERNAME_PATTERN } from '../users/users-schemas.ts'

const Username = Type.String({
  pattern: USERNAME_PATTERN,
  description: '3 to 50 letters, digits, ".", "_" or "-", starting with a letter or digit',
})
// The 8-to-72-byte rule is about UTF-8 bytes (bcrypt reads at most 72), which a JSON schema
// cannot count: the service checks it and answers 422 saying why. The schema only bounds
// characters, and a 72-byte password never has more than 72 characters.
const Password = Type.String({ minLength: 1, maxLength: 72, description: '8 to 72 bytes in UTF-8' })

export const RegisterSchema = Type.Object(
  { username: Username, password: Password },
  { additionalProperties: false },
)
export type Register = Type.Static<typeof RegisterSchema>

/** JSON or the OAuth2 password form (grant_type, scope and client fields are accepted and ignored). */
export const LoginSchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 255 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  grant_type: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
})
export type Login = Type.Static<typeof LoginSchema>

export const TokenSchema = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'seconds until the token expires' }),
  },
  { description: 'A bearer token' },
)
export type Token = Type.Static<typeof TokenSchema>
