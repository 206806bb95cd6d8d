import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomUUID,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSigner, createVerifier, type TokenError } from 'fast-jwt'
import type { Config } from '../config/index.ts'
import { ConfigError } from '../config/index.ts'
import { AppError } from './errors.ts'

/** The settings the token service reads; pass the whole Config. */
export type TokenConfig = Pick<
  Config,
  | 'JWT_ALGORITHM'
  | 'JWT_SECRET'
  | 'JWT_PRIVATE_KEY_FILE'
  | 'JWT_PUBLIC_KEY_FILE'
  | 'JWT_EXPIRES_SECONDS'
  | 'JWT_ISSUER'
  | 'JWT_AUDIENCE'
>

export type TokenAlgorithm = Config['JWT_ALGORITHM']

/** Stable codes of the errors `verify` throws (kind 'unauthorized'). */
export const TokenErrorCode = {
  invalid: 'AUTH_INVALID_TOKEN',
  expired: 'AUTH_TOKEN_EXPIRED',
} as const

/** Clock skew allowed between the replicas that issue and the ones that verify. */
export const TOKEN_CLOCK_TOLERANCE_SECONDS = 5

/** Longer strings are refused before any decoding; our tokens are well under 1 KB. */
const MAX_TOKEN_LENGTH = 8192

/** The claims of a verified access token. */
export interface TokenClaims {
  /** The user id. */
  sub: string
  /** The token's unique id: what the token store revokes. */
  jti: string
  /** Issued at, in seconds since the epoch. */
  iat: number
  /** Expires at, in seconds since the epoch. */
  exp: number
  iss: string
  aud: string | string[]
  nbf?: number
}

export interface IssuedToken {
  token: string
  jti: string
  /** The exp claim: seconds since the epoch. */
  expiresAt: number
  /** The `expires_in` of an OAuth2 token response. */
  expiresInSeconds: number
}

export interface TokenService {
  readonly algorithm: TokenAlgorithm
  /** The `kid` header of every token issued and the only one accepted. */
  readonly keyId: string
  /** Signs an access token for `userId`; rejects if this process has no signing key. */
  issue(userId: string): Promise<IssuedToken>
  /**
   * Checks signature, algorithm, kid, typ, exp, nbf, iat, iss, aud and the required claims, and
   * resolves to the claims, or rejects with AppError AUTH_INVALID_TOKEN or AUTH_TOKEN_EXPIRED.
   * It does not know about revocation: ask the token store's `isRevoked(jti)` too.
   */
  verify(token: string): Promise<TokenClaims>
}

export interface TokenServiceOptions {
  /**
   * The clock `issue` reads, in ms since the epoch; tests set it to mint old tokens. Verification
   * always reads the real clock (as fast-jwt does).
   */
  now?: () => number
  /** Verified tokens kept by hash, up to their expiry: repeated requests skip the crypto. */
  cacheSize?: number
}

interface Keys {
  signKey: string | undefined
  verifyKey: string
  keyId: string
}

/**
 * JWT access tokens over fast-jwt. HS256 signs with JWT_SECRET; RS256 and ES256 with the PEM
 * files JWT_PRIVATE_KEY_FILE (needed to issue) and JWT_PUBLIC_KEY_FILE (derived from the private
 * key when absent, so a verify-only process needs just the public one). Bad keys fail here, at
 * start-up, with a ConfigError naming the setting.
 */
export function createTokenService(
  config: TokenConfig,
  options: TokenServiceOptions = {},
): TokenService {
  const algorithm = config.JWT_ALGORITHM
  const lifetimeSeconds = config.JWT_EXPIRES_SECONDS
  const now = options.now ?? Date.now
  const keys = algorithm === 'HS256' ? secretKeys(config.JWT_SECRET) : keyFiles(config, algorithm)

  const sign =
    keys.signKey === undefined
      ? undefined
      : createSigner({ key: keys.signKey, algorithm, kid: keys.keyId })

  const verifier = createVerifier({
    key: keys.verifyKey,
    // Pinned: exactly the configured algorithm, so `none`, HS256 signed with a public key, or any
    // other algorithm is refused before the signature is even looked at.
    algorithms: [algorithm],
    complete: true,
    checkTyp: 'JWT',
    allowedIss: config.JWT_ISSUER,
    allowedAud: config.JWT_AUDIENCE,
    requiredClaims: ['sub', 'jti', 'iat', 'exp', 'iss', 'aud'],
    // Also validates iat as a number, and refuses a token older than any we would issue.
    maxAge: (lifetimeSeconds + TOKEN_CLOCK_TOLERANCE_SECONDS) * 1000,
    clockTolerance: TOKEN_CLOCK_TOLERANCE_SECONDS * 1000,
    // A cached entry is bounded by the token's own exp (and nbf), so caching can never extend a
    // token's life; revocation is not the verifier's business and is checked on every request.
    // Failures are not cached (errorCacheTTL defaults to -1).
    cache: options.cacheSize ?? 10_000,
  })

  return {
    algorithm,
    keyId: keys.keyId,

    async issue(userId) {
      if (sign === undefined)
        throw new Error('cannot issue tokens: JWT_PRIVATE_KEY_FILE is not set in this process')
      if (typeof userId !== 'string' || userId === '')
        throw new TypeError('userId must be a non-empty string')
      const iat = Math.floor(now() / 1000)
      const exp = iat + lifetimeSeconds
      const jti = randomUUID()
      const token = sign({
        sub: userId,
        jti,
        iat,
        exp,
        iss: config.JWT_ISSUER,
        aud: config.JWT_AUDIENCE,
      })
      return { token, jti, expiresAt: exp, expiresInSeconds: lifetimeSeconds }
    },

    async verify(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
        throw invalidToken()
      let decoded: { header: Record<string, unknown>; payload: Record<string, unknown> }
      try {
        decoded = verifier(token)
      } catch (error) {
        if ((error as TokenError).code === 'FAST_JWT_EXPIRED') throw expiredToken(error)
        throw invalidToken(error)
      }
      const { header, payload } = decoded
      if (header.kid !== keys.keyId) throw invalidToken(new Error('unknown kid'))
      const { sub, jti, iat, exp, iss, aud, nbf } = payload
      if (
        typeof sub !== 'string' ||
        sub === '' ||
        typeof jti !== 'string' ||
        jti === '' ||
        typeof iat !== 'number' ||
        typeof exp !== 'number' ||
        typeof iss !== 'string'
      )
        throw invalidToken(new Error('malformed claims'))
      if (iat * 1000 > Date.now() + TOKEN_CLOCK_TOLERANCE_SECONDS * 1000)
        throw invalidToken(new Error('issued in the future'))
      // A fresh object each time: the verifier's cache holds the payload, which must not be
      // reachable (and mutable) by callers.
      const claims: TokenClaims = { sub, jti, iat, exp, iss, aud: aud as string | string[] }
      if (typeof nbf === 'number') claims.nbf = nbf
      return claims
    },
  }
}

/** AppError AUTH_INVALID_TOKEN: malformed, forged, or failing a claim check. */
export function invalidToken(cause?: unknown): AppError {
  return new AppError('unauthorized', TokenErrorCode.invalid, 'Could not validate credentials', {
    cause,
  })
}

/** AppError AUTH_TOKEN_EXPIRED. */
export function expiredToken(cause?: unknown): AppError {
  return new AppError('unauthorized', TokenErrorCode.expired, 'Token has expired', { cause })
}

function secretKeys(secret: string): Keys {
  // The config schema already demands 32 characters; this guards a hand-built config too.
  if (Buffer.byteLength(secret, 'utf8') < 32)
    throw new ConfigError('JWT_SECRET=(value hidden) is invalid: expected at least 32 bytes')
  // An HMAC of a fixed label under the secret: it names the secret without revealing anything
  // an attacker could not already test against a token's own signature.
  const keyId = createHmac('sha256', secret).update('servekit jwt key id').digest('base64url')
  return { signKey: secret, verifyKey: secret, keyId: keyId.slice(0, 22) }
}

function keyFiles(config: TokenConfig, algorithm: 'RS256' | 'ES256'): Keys {
  const privateFile = config.JWT_PRIVATE_KEY_FILE
  const publicFile = config.JWT_PUBLIC_KEY_FILE
  if (privateFile === undefined && publicFile === undefined)
    throw new ConfigError(
      `JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE are unset: ${algorithm} needs at least one PEM key file`,
    )
  const privatePem =
    privateFile === undefined ? undefined : readPem('JWT_PRIVATE_KEY_FILE', privateFile)
  const privateKey =
    privatePem === undefined
      ? undefined
      : parseKey('JWT_PRIVATE_KEY_FILE', () => createPrivateKey(privatePem))
  const publicPem =
    publicFile === undefined ? undefined : readPem('JWT_PUBLIC_KEY_FILE', publicFile)
  // A private key would parse here too (its public half is derived), but it has no business on
  // the hosts that only verify.
  if (publicPem?.includes('PRIVATE KEY'))
    throw new ConfigError(
      'JWT_PUBLIC_KEY_FILE is invalid: it holds a private key; expected a public key',
    )
  const publicKey =
    publicPem === undefined
      ? createPublicKey(privateKey as KeyObject)
      : parseKey('JWT_PUBLIC_KEY_FILE', () => createPublicKey(publicPem))
  checkKeyFits(
    algorithm,
    publicKey,
    publicFile === undefined ? 'JWT_PRIVATE_KEY_FILE' : 'JWT_PUBLIC_KEY_FILE',
  )

  const keyId = thumbprint(publicKey)
  if (privateKey !== undefined) {
    checkKeyFits(algorithm, privateKey, 'JWT_PRIVATE_KEY_FILE')
    if (thumbprint(createPublicKey(privateKey)) !== keyId)
      throw new ConfigError(
        'JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE do not belong together: expected the public half of the private key',
      )
  }
  return {
    signKey: privatePem,
    verifyKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyId,
  }
}

function readPem(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(
      `${setting}=${JSON.stringify(path)} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
}

function parseKey(setting: string, parse: () => KeyObject): KeyObject {
  try {
    return parse()
  } catch {
    throw new ConfigError(`${setting} is invalid: expected a PEM key (unencrypted)`)
  }
}

function checkKeyFits(algorithm: 'RS256' | 'ES256', key: KeyObject, setting: string): void {
  const details = key.asymmetricKeyDetails
  if (algorithm === 'RS256') {
    if (key.asymmetricKeyType !== 'rsa' || (details?.modulusLength ?? 0) < 2048)
      throw new ConfigError(`${setting} is invalid: RS256 expects an RSA key of at least 2048 bits`)
  } else if (key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new ConfigError(`${setting} is invalid: ES256 expects an EC key on the P-256 curve`)
  }
}

/** The RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable kid. */
function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' })
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}
