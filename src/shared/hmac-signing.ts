import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AppError } from './errors.ts'

/**
 * HMAC-SHA256 signatures for service-to-service requests.
 *
 * The signer sends four headers: `X-Key-Id`, `X-Timestamp` (Unix seconds), `X-Nonce` (random,
 * base64url) and `X-Signature` (lowercase hex HMAC-SHA256 with the key's secret) over this
 * canonical string, lines joined by "\n", no trailing newline:
 *
 *     SERVEKIT-HMAC-SHA256
 *     <key id>
 *     <METHOD, upper case>
 *     <path with query, exactly as sent on the request line, e.g. /internal/users/7?full=1>
 *     <X-Timestamp>
 *     <X-Nonce>
 *     <lowercase hex SHA-256 of the raw body bytes; of zero bytes when there is no body>
 *
 * The verifier rebuilds the string from what it received, compares signatures in constant time,
 * refuses timestamps further than `maxSkewSeconds` from its clock, and remembers each nonce for
 * twice that window so the same signed request cannot be played again. A nonce older than the
 * window needs no memory: its timestamp is already stale.
 */

export const SIGNATURE_SCHEME = 'SERVEKIT-HMAC-SHA256'

/** Header names, lower case as Node presents incoming headers. */
export const SIGNATURE_HEADERS = {
  keyId: 'x-key-id',
  timestamp: 'x-timestamp',
  nonce: 'x-nonce',
  signature: 'x-signature',
} as const

const EMPTY_BODY_SHA256 = createHash('sha256').digest('hex')
const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/
const TIMESTAMP_PATTERN = /^\d{1,12}$/
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/
const KEY_ID_PATTERN = /^[\w.:-]{1,128}$/

export type SignableBody = string | Uint8Array | undefined

/** What a signature covers. */
export interface SignableRequest {
  method: string
  /** Path with query string, as sent on the request line. */
  path: string
  body?: SignableBody
}

export interface SigningKey {
  keyId: string
  secret: string
}

/** Builds the canonical string both sides sign (see the module comment). */
export function canonicalString(
  request: SignableRequest,
  keyId: string,
  timestamp: string,
  nonce: string,
): string {
  return [
    SIGNATURE_SCHEME,
    keyId,
    request.method.toUpperCase(),
    request.path,
    timestamp,
    nonce,
    bodySha256(request.body),
  ].join('\n')
}

function bodySha256(body: SignableBody): string {
  if (body === undefined || body.length === 0) return EMPTY_BODY_SHA256
  return createHash('sha256').update(body).digest('hex')
}

function hmacHex(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex')
}

/**
 * The headers that sign `request` with `key`. Each call makes a new nonce, so a retried request
 * must be signed again (the verifier refuses a nonce it has seen).
 */
export function signRequest(
  request: SignableRequest,
  key: SigningKey,
  options: { nowMs?: number; nonce?: string } = {},
): Record<string, string> {
  if (!KEY_ID_PATTERN.test(key.keyId)) throw new TypeError(`invalid signing key id: ${key.keyId}`)
  if (key.secret.length === 0) throw new TypeError('the signing secret is empty')
  const timestamp = String(Math.floor((options.nowMs ?? Date.now()) / 1000))
  const nonce = options.nonce ?? randomBytes(18).toString('base64url')
  const signature = hmacHex(key.secret, canonicalString(request, key.keyId, timestamp, nonce))
  return {
    [SIGNATURE_HEADERS.keyId]: key.keyId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signature,
  }
}

/** Remembers nonces already used. The Cache-backed one (Redis SET NX EX) replaces it in prod. */
export interface NonceStore {
  /** Records `nonce` for `ttlSeconds`; resolves true if it was new, false if already seen. */
  remember(nonce: string, ttlSeconds: number): Promise<boolean>
}

/**
 * A NonceStore in process memory, for embedded mode and tests. Bounded: past `maxEntries`
 * the oldest nonce is forgotten first (with equal TTLs that is also the first to expire).
 */
export function createMemoryNonceStore(
  options: { maxEntries?: number; nowMs?: () => number } = {},
): NonceStore & { readonly size: number } {
  const maxEntries = options.maxEntries ?? 100_000
  const nowMs = options.nowMs ?? Date.now
  // Insertion order is expiry order when TTLs are equal, so expired entries sit at the front.
  const expiresAtMs = new Map<string, number>()
  const prune = (now: number) => {
    for (const [nonce, expiry] of expiresAtMs) {
      if (expiry > now && expiresAtMs.size < maxEntries) break
      expiresAtMs.delete(nonce)
    }
  }
  return {
    get size() {
      return expiresAtMs.size
    },
    async remember(nonce, ttlSeconds) {
      const now = nowMs()
      prune(now)
      const expiry = expiresAtMs.get(nonce)
      if (expiry !== undefined && expiry > now) return false
      expiresAtMs.delete(nonce)
      expiresAtMs.set(nonce, now + ttlSeconds * 1000)
      return true
    },
  }
}

/** Why a signature was refused; for logs and metrics only, never sent to the caller. */
export type SignatureFailure =
  | 'missing'
  | 'malformed'
  | 'unknown_key'
  | 'stale'
  | 'wrong'
  | 'replayed'

export type SignatureCheck =
  | { isValid: true; keyId: string }
  | { isValid: false; reason: SignatureFailure }

/** A received request: headers as Node gives them (lower-case names). */
export interface ReceivedRequest extends SignableRequest {
  headers: Record<string, string | string[] | undefined>
}

export interface SignatureVerifierOptions {
  /** The secret for a key id, or undefined when the key is unknown. */
  secretFor: (keyId: string) => string | undefined
  nonceStore: NonceStore
  /** How far the sender's clock may be from ours; default 300 s. */
  maxSkewSeconds?: number
  nowMs?: () => number
}

export interface SignatureVerifier {
  /** Checks the signature and, when it is valid, uses up its nonce. */
  check(request: ReceivedRequest): Promise<SignatureCheck>
  /**
   * As check(), but throws AppError('unauthorized', 'SIGNATURE_INVALID') with one message for
   * every failure; the reason is in `details.reason` for the log.
   */
  verify(request: ReceivedRequest): Promise<{ keyId: string }>
}

/** Builds the verifier /internal routes use. */
export function createSignatureVerifier(options: SignatureVerifierOptions): SignatureVerifier {
  const maxSkewSeconds = options.maxSkewSeconds ?? 300
  const nowMs = options.nowMs ?? Date.now

  const check = async (request: ReceivedRequest): Promise<SignatureCheck> => {
    const values = [
      request.headers[SIGNATURE_HEADERS.keyId],
      request.headers[SIGNATURE_HEADERS.timestamp],
      request.headers[SIGNATURE_HEADERS.nonce],
      request.headers[SIGNATURE_HEADERS.signature],
    ]
    if (values.some((value) => value === undefined || value === '')) {
      return { isValid: false, reason: 'missing' }
    }
    // A header sent twice arrives as an array: ambiguous, so refused.
    if (values.some(Array.isArray)) return { isValid: false, reason: 'malformed' }
    const [keyId, timestamp, nonce, signature] = values as [string, string, string, string]
    if (
      !KEY_ID_PATTERN.test(keyId) ||
      !TIMESTAMP_PATTERN.test(timestamp) ||
      !NONCE_PATTERN.test(nonce) ||
      !SIGNATURE_PATTERN.test(signature)
    ) {
      return { isValid: false, reason: 'malformed' }
    }
    const secret = options.secretFor(keyId)
    if (secret === undefined || secret.length === 0)
      return { isValid: false, reason: 'unknown_key' }
    if (Math.abs(nowMs() / 1000 - Number(timestamp)) > maxSkewSeconds) {
      return { isValid: false, reason: 'stale' }
    }
    const expected = Buffer.from(
      hmacHex(secret, canonicalString(request, keyId, timestamp, nonce)),
      'hex',
    )
    // Both are 32 bytes (the pattern above guarantees the received one), as timingSafeEqual needs.
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
      return { isValid: false, reason: 'wrong' }
    }
    // Only a valid signature spends a nonce, so forged requests cannot fill the store.
    const isNew = await options.nonceStore.remember(`${keyId}:${nonce}`, 2 * maxSkewSeconds)
    if (!isNew) return { isValid: false, reason: 'replayed' }
    return { isValid: true, keyId }
  }

  return {
    check,
    async verify(request) {
      const result = await check(request)
      if (!result.isValid) {
        throw new AppError('unauthorized', 'SIGNATURE_INVALID', 'Invalid request signature', {
          details: { reason: result.reason },
        })
      }
      return { keyId: result.keyId }
    },
  }
}
