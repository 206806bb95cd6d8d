import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelayMs, isIdempotent, isRetryableStatus, retryAfterMs } from './retry-policy.ts'

test('only GET, HEAD, OPTIONS, PUT and DELETE count as idempotent', () => {
  for (const method of ['GET', 'head', 'OPTIONS', 'PUT', 'DELETE']) assert.ok(isIdempotent(method))
  for (const method of ['POST', 'PATCH', 'CONNECT']) assert.equal(isIdempotent(method), false)
  assert.deepEqual([500, 502, 503, 504, 429].map(isRetryableStatus), [
    false,
    true,
    true,
    true,
    false,
  ])
})

test('backoff is full jitter under a doubling ceiling capped at the maximum', () => {
  const always = (value: number) => () => value
  assert.equal(backoffDelayMs(0, 100, 5000, always(0.999)), 99)
  assert.equal(backoffDelayMs(3, 100, 5000, always(0.5)), 400)
  assert.equal(backoffDelayMs(10, 100, 5000, always(0.5)), 2500)
  assert.equal(backoffDelayMs(4, 100, 5000, always(0)), 0)
  for (let retry = 0; retry < 20; retry++) {
    const delay = backoffDelayMs(retry, 100, 5000)
    assert.ok(delay >= 0 && delay < Math.min(5000, 100 * 2 ** retry))
  }
})

test('Retry-After is read as seconds or as an HTTP date', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0)
  assert.equal(retryAfterMs('3', now), 3000)
  assert.equal(retryAfterMs(' 0 ', now), 0)
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 12:00:10 GMT', now), 10_000)
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 11:00:00 GMT', now), 0)
  assert.equal(retryAfterMs('soon', now), undefined)
  assert.equal(retryAfterMs(undefined, now), undefined)
})
