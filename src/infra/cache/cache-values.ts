/**
 * Rules both Cache implementations share, so that they fail the same way on the same input.
 */

/** A TTL for a write: a positive, finite number of seconds (fractions allowed), in whole ms. */
export function ttlToMs(ttlSeconds: number): number {
  const ms = Math.round(ttlSeconds * 1000)
  if (!Number.isFinite(ttlSeconds) || ms < 1)
    throw new RangeError(`ttlSeconds must be a positive number, got ${ttlSeconds}`)
  return ms
}

/** A TTL for EXPIRE: like Redis, zero or less deletes the key, so only NaN is refused. */
export function expireToMs(ttlSeconds: number): number {
  if (Number.isNaN(ttlSeconds)) throw new RangeError('ttlSeconds must be a number, got NaN')
  return Math.max(0, Math.round(Math.min(ttlSeconds, Number.MAX_SAFE_INTEGER / 1000) * 1000))
}

/** INCRBY takes a safe integer, as Redis does (it refuses fractions with an error). */
export function checkIncrement(by: number): void {
  if (!Number.isSafeInteger(by)) throw new RangeError(`increment must be an integer, got ${by}`)
}

/** LRANGE takes integer indexes; checked before the call so both implementations refuse alike. */
export function checkIndexes(start: number, stop: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(stop))
    throw new RangeError(`list indexes must be integers, got ${start} and ${stop}`)
}

export function encodeJson(value: unknown): string {
  const text = JSON.stringify(value)
  if (text === undefined) throw new TypeError(`cannot store ${typeof value} as JSON`)
  return text
}

export function decodeJson<T>(text: string | undefined): T | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as T)
}
