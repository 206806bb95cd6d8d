import type { Principal } from '../../http/plugins/authenticate.ts'
import type { UserPublic } from '../users/users-schemas.ts'
import { toPublicUser, type UsersStore } from '../users/users-service.ts'
import { invalidCredentials, tokenRevoked, usernameTaken } from './auth-errors.ts'
import type { Token } from './auth-schemas.ts'

/** The password operations auth needs (bcrypt off the event loop). */
export interface Passwords {
  hash(password: string): Promise<string>
  /** Compares against a dummy hash when `hash` is undefined, so both paths take the same time. */
  verifyOrDummy(password: string, hash: string | undefined): Promise<boolean>
  /** Throws a 422 AppError when the password breaks the length rule. */
  assertAcceptable(password: string): void
}

/** Signed access tokens. */
export interface Tokens {
  issue(userId: string): Promise<{ token: string; jti: string; expiresAt: number }>
  verify(token: string): Promise<{ sub: string; jti: string; exp: number }>
}

/** Revocation, per token and per user. */
export interface TokenStore {
  remember(userId: string, jti: string, expiresAt: number): Promise<void>
  revoke(jti: string): Promise<void>
  isRevoked(jti: string): Promise<boolean>
  revokeAll(userId: string): Promise<void>
}

export interface AuthServiceDeps {
  users: UsersStore
  passwords: Passwords
  tokens: Tokens
  tokenStore: TokenStore
}

export type AuthService = ReturnType<typeof createAuthService>

/** Registration, login, logout and the bearer check every protected route runs. */
export function createAuthService({ users, passwords, tokens, tokenStore }: AuthServiceDeps) {
  return {
    async register(username: string, password: string): Promise<UserPublic> {
      passwords.assertAcceptable(password)
      if (await users.findByUsername(username)) throw usernameTaken()
      const created = await users.create({
        username,
        password_hash: await passwords.hash(password),
      })
      if (!created) throw usernameTaken()
      return toPublicUser(created)
    },

    async login(username: string, password: string): Promise<Token> {
      const user = await users.findByUsername(username)
      // An unknown user costs a bcrypt comparison too: the answer and its timing are the same.
      const isValid = await passwords.verifyOrDummy(password, user?.password_hash)
      if (!user || !isValid) throw invalidCredentials()
      const { token, jti, expiresAt } = await tokens.issue(user.id)
      await tokenStore.remember(user.id, jti, expiresAt)
      return {
        access_token: token,
        token_type: 'bearer',
        expires_in: Math.max(0, expiresAt - nowSeconds()),
      }
    },

    async logout(principal: Principal): Promise<void> {
      await tokenStore.revoke(principal.jti)
    },

    async logoutAll(principal: Principal): Promise<void> {
      await tokenStore.revokeAll(principal.userId)
    },

    async authenticate(token: string): Promise<Principal> {
      const claims = await tokens.verify(token)
      if (await tokenStore.isRevoked(claims.jti)) throw tokenRevoked()
      return { userId: claims.sub, jti: claims.jti, expiresAt: claims.exp }
    },
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000)
