import { AppError } from '../../shared/errors.ts'
import { expiredToken, invalidToken, TokenErrorCode } from '../../shared/tokens.ts'

/** The auth module's stable error codes; clients may branch on them. */
export const AuthErrorCode = {
  invalidCredentials: 'AUTH_INVALID_CREDENTIALS',
  notAuthenticated: 'AUTH_NOT_AUTHENTICATED',
  /** Thrown by the token service (src/shared/tokens.ts), listed here so the catalog is whole. */
  invalidToken: TokenErrorCode.invalid,
  tokenExpired: TokenErrorCode.expired,
  tokenRevoked: 'AUTH_TOKEN_REVOKED',
  usernameTaken: 'AUTH_USERNAME_TAKEN',
} as const

/**
 * One answer for an unknown user and a wrong password, so the response does not reveal which
 * usernames exist (the password hasher's `verifyOrDummy` makes the timing match too).
 */
export const invalidCredentials = () =>
  new AppError('unauthorized', AuthErrorCode.invalidCredentials, 'Incorrect username or password')

/** No bearer token at all (FastAPI's OAuth2PasswordBearer says the same). */
export const notAuthenticated = () =>
  new AppError('unauthorized', AuthErrorCode.notAuthenticated, 'Not authenticated')

/** From the token service: a malformed, forged or failing token, and an expired one. */
export { expiredToken as tokenExpired, invalidToken }

/** A genuine token that logout or logout-all ended (or that the token store no longer knows). */
export const tokenRevoked = () =>
  new AppError('unauthorized', AuthErrorCode.tokenRevoked, 'Token has been revoked')

/** The name is not echoed back: the client sent it and logs need not hold it twice. */
export const usernameTaken = () =>
  new AppError('conflict', AuthErrorCode.usernameTaken, 'Username is already taken')
