/** Methods that may be sent twice with the same effect (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

/** Statuses that say "try again later" about a request the server did not act on. */
const RETRYABLE_STATUSES = new Set([502, 503, 504])

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase())
}

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status)
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a random wait in [0, min(maxMs, baseMs * 2^retry)], so that many clients retrying
 * the same failure spread out instead of hitting the upstream together again.
 */
export function backoffDelayMs(
  retry: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** retry)
  return Math.floor(random() * ceiling)
}

/**
 * The wait a Retry-After header asks for (delta-seconds or an HTTP date), in ms; undefined when
 * absent or unreadable. A date in the past means "now" (0).
 */
export function retryAfterMs(header: string | undefined, nowMs = Date.now()): number | undefined {
  if (header === undefined) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMs)
}
