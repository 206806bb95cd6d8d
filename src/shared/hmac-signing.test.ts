import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AppError } from './errors.ts'
import {
  canonicalString,
  createMemoryNonceStore,
  createSignatureVerifier,
  type ReceivedRequest,
  SIGNATURE_HEADERS,
  signRequest,
} from './hmac-signing.ts'

const key = { keyId: 'orders-service', secret: 'a-long-shared-secret-of-the-two-services' }
const T0 = Date.UTC(2026, 0, 1)

function setup(options: { nowMs?: number; maxSkewSeconds?: number } = {}) {
  let now = options.nowMs ?? T0
  const nonceStore = createMemoryNonceStore({ nowMs: () => now })
  const verifier = createSignatureVerifier({
    secretFor: (keyId) => (keyId === key.keyId ? key.secret : undefined),
    nonceStore,
    maxSkewSeconds: options.maxSkewSeconds ?? 300,
    nowMs: () => now,
  })
  return {
    verifier,
    nonceStore,
    advance(ms: number) {
      now += ms
    },
  }
}

function signed(
  overrides: Partial<ReceivedRequest> = {},
  signAt = T0,
): ReceivedRequest & { headers: Record<string, string> } {
  const request = { method: 'POST', path: '/internal/users/7?full=1', body: '{"a":1}' }
  return {
    ...request,
    headers: signRequest(request, key, { nowMs: signAt }),
    ...overrides,
  } as ReceivedRequest & { headers: Record<string, string> }
}

test('the canonical string joins scheme, key, method, path, timestamp, nonce and body hash', () => {
  const text = canonicalString({ method: 'get', path: '/a?b=1' }, 'k', '1700000000', 'n'.repeat(16))
  assert.equal(
    text,
    [
      'SERVEKIT-HMAC-SHA256',
      'k',
      'GET',
      '/a?b=1',
      '1700000000',
      'nnnnnnnnnnnnnnnn',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ].join('\n'),
  )
})

test('a correctly signed request verifies and names its key', async () => {
  const { verifier } = setup()
  assert.deepEqual(await verifier.check(signed()), { isValid: true, keyId: key.keyId })
})

test('a string body and the same bytes as a Uint8Array sign alike', async () => {
  const { verifier } = setup()
  const request = signed()
  const result = await verifier.check({ ...request, body: new TextEncoder().encode('{"a":1}') })
  assert.equal(result.isValid, true)
})

test('when any signature header is missing, the reason is missing', async () => {
  const { verifier } = setup()
  for (const name of Object.values(SIGNATURE_HEADERS)) {
    const request = signed()
    delete request.headers[name]
    assert.deepEqual(await verifier.check(request), { isValid: false, reason: 'missing' }, name)
  }
})

test('a tampered body, path, method or signature is wrong', async () => {
  const { verifier } = setup()
  const tampered: Array<Partial<ReceivedRequest>> = [
    { body: '{"a":2}' },
    { body: undefined },
    { path: '/internal/users/8?full=1' },
    { path: '/internal/users/7' },
    { method: 'PUT' },
  ]
  for (const change of tampered) {
    assert.deepEqual(await verifier.check(signed(change)), { isValid: false, reason: 'wrong' })
  }
  const request = signed()
  const last = request.headers[SIGNATURE_HEADERS.signature]?.endsWith('0') ? '1' : '0'
  request.headers[SIGNATURE_HEADERS.signature] =
    request.headers[SIGNATURE_HEADERS.signature]?.slice(0, -1) + last
  assert.deepEqual(await verifier.check(request), { isValid: false, reason: 'wrong' })
})

test('a signature made with another secret is wrong; an unknown key id is refused', async () => {
  const { verifier } = setup()
  const request = { method: 'GET', path: '/internal/users/7' }
  const forged = signRequest(request, { keyId: key.keyId, secret: 'guessed-secret' }, { nowMs: T0 })
  assert.deepEqual(await verifier.check({ ...request, headers: forged }), {
    isValid: false,
    reason: 'wrong',
  })
  const unknown = signRequest(request, { keyId: 'other', secret: key.secret }, { nowMs: T0 })
  assert.deepEqual(await verifier.check({ ...request, headers: unknown }), {
    isValid: false,
    reason: 'unknown_key',
  })
})

test('malformed header values are refused before any HMAC is computed', async () => {
  const { verifier } = setup()
  const bad: Record<string, string> = {
    [SIGNATURE_HEADERS.timestamp]: 'yesterday',
    [SIGNATURE_HEADERS.nonce]: 'short',
    [SIGNATURE_HEADERS.signature]: 'ABC',
  }
  for (const [name, value] of Object.entries(bad)) {
    const request = signed()
    request.headers[name] = value
    assert.deepEqual(await verifier.check(request), { isValid: false, reason: 'malformed' }, name)
  }
})

test('a timestamp beyond the clock-skew bound, either way, is stale', async () => {
  const { verifier } = setup({ maxSkewSeconds: 60 })
  assert.deepEqual(await verifier.check(signed({}, T0 - 61_000)), {
    isValid: false,
    reason: 'stale',
  })
  assert.deepEqual(await verifier.check(signed({}, T0 + 61_000)), {
    isValid: false,
    reason: 'stale',
  })
  assert.equal((await verifier.check(signed({}, T0 - 59_000))).isValid, true)
})

test('the same signed request sent twice is replayed the second time', async () => {
  const { verifier, advance } = setup({ maxSkewSeconds: 60 })
  const request = signed()
  assert.equal((await verifier.check(request)).isValid, true)
  advance(30_000)
  assert.deepEqual(await verifier.check(request), { isValid: false, reason: 'replayed' })
  // Once the nonce is forgotten, the timestamp has long been stale: still refused.
  advance(200_000)
  assert.deepEqual(await verifier.check(request), { isValid: false, reason: 'stale' })
})

test('a forged request does not use up the nonce of the real one', async () => {
  const { verifier } = setup()
  const real = signed()
  const forged = { ...real, body: '{"evil":1}' }
  assert.deepEqual(await verifier.check(forged), { isValid: false, reason: 'wrong' })
  assert.equal((await verifier.check(real)).isValid, true)
})

test('verify throws one unauthorized AppError outward, the reason only in details', async () => {
  const { verifier } = setup()
  const request = signed()
  await verifier.verify(request)
  const failures = [{ ...request }, { ...request, body: 'x' }, { ...request, headers: {} }]
  const seen = new Set<string>()
  for (const failing of failures) {
    await assert.rejects(verifier.verify(failing), (error: unknown) => {
      assert.ok(error instanceof AppError)
      assert.equal(error.kind, 'unauthorized')
      assert.equal(error.code, 'SIGNATURE_INVALID')
      assert.equal(error.message, 'Invalid request signature')
      seen.add((error.details as { reason: string }).reason)
      return true
    })
  }
  assert.deepEqual([...seen].sort(), ['missing', 'replayed', 'wrong'])
})

test('the memory nonce store forgets expired nonces and stays bounded', async () => {
  let now = 0
  const store = createMemoryNonceStore({ maxEntries: 3, nowMs: () => now })
  assert.equal(await store.remember('a', 10), true)
  assert.equal(await store.remember('a', 10), false)
  now = 11_000
  assert.equal(await store.remember('a', 10), true)
  for (const nonce of ['b', 'c', 'd', 'e']) await store.remember(nonce, 10)
  assert.equal(store.size, 3)
})

test('signing refuses an empty secret or a bad key id (programmer errors)', () => {
  assert.throws(() => signRequest({ method: 'GET', path: '/' }, { keyId: 'k', secret: '' }))
  assert.throws(() => signRequest({ method: 'GET', path: '/' }, { keyId: 'a b', secret: 's' }))
})
