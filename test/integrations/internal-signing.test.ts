import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import { request } from 'undici'
import { signRequest } from '../../src/shared/hmac-signing.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../helpers/services.ts'
import { integrationApp, signUp } from './helpers.ts'

const KEY = { keyId: 'orders-v1', secret: 's3cret-s3cret-s3cret-s3cret-s3cret-42' }
const OLD_KEY = { keyId: 'orders-v0', secret: 'older-secret-older-secret-older-secret' }

async function signedApp(t: TestContext) {
  const app = await integrationApp(t, {
    INTERNAL_HMAC_KEYS: `${KEY.keyId}:${KEY.secret},${OLD_KEY.keyId}:${OLD_KEY.secret}`,
    INTERNAL_HMAC_MAX_SKEW_SECONDS: '60',
  })
  const alice = await signUp(app.baseUrl, 'alice')
  return { ...app, alice }
}

/** Sends exactly these headers and body, so a test can replay or tamper with them. */
async function send(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: string,
) {
  const response = await request(`${baseUrl}${path}`, { method, headers, body })
  const text = await response.body.text()
  return { status: response.statusCode, body: text ? JSON.parse(text) : undefined }
}

test('the HTTP client signs its calls: a signed call to /internal/users/:id answers 200', async (t) => {
  const { baseUrl, container, alice } = await signedApp(t)
  const signed = container.integrations.signedHttp
  assert.ok(signed, 'INTERNAL_HMAC_KEYS gives a signing client')
  const answer = await signed.getJson<{ id: string; username: string }>(
    `${baseUrl}/internal/users/${alice.id}`,
  )
  assert.equal(answer.status, 200, JSON.stringify(answer.error?.body))
  assert.deepEqual(
    { id: answer.data?.id, username: answer.data?.username },
    { id: alice.id, username: 'alice' },
  )
  // Every attempt is signed afresh, so the same client call works again (a new nonce).
  assert.equal((await signed.getJson(`${baseUrl}/internal/users/${alice.id}`)).status, 200)
  const missing = await signed.getJson(`${baseUrl}/internal/users/42`)
  assert.equal(missing.status, 404)

  const batch = await signed.postJson<{ users: Array<{ id: string }>; missing: string[] }>(
    `${baseUrl}/internal/users/batch`,
    { ids: [alice.id, '42'] },
  )
  assert.equal(batch.status, 200, JSON.stringify(batch.error?.body))
  assert.deepEqual(
    batch.data?.users.map((user) => user.id),
    [alice.id],
  )
  assert.deepEqual(batch.data?.missing, ['42'])
})

test('a tampered, replayed, stale, unsigned or unknown-key request gets 401', async (t) => {
  const { baseUrl, alice } = await signedApp(t)
  const path = `/internal/users/${alice.id}`
  const headers = signRequest({ method: 'GET', path }, KEY)

  const first = await send(baseUrl, 'GET', path, headers)
  assert.equal(first.status, 200)
  const replayed = await send(baseUrl, 'GET', path, headers)
  assert.equal(replayed.status, 401, 'the same nonce again')
  assert.deepEqual(replayed.body, {
    detail: 'Invalid request signature',
    code: 'SIGNATURE_INVALID',
  })

  const forOther = signRequest({ method: 'GET', path }, KEY)
  const tamperedPath = await send(baseUrl, 'GET', `/internal/users/${alice.id}?x=1`, forOther)
  assert.equal(tamperedPath.status, 401, 'a path other than the one signed')
  const fresh = signRequest({ method: 'GET', path }, KEY)
  const flipped = fresh['x-signature']?.replace(/^./, (c) => (c === '0' ? '1' : '0')) ?? ''
  const tamperedSignature = await send(baseUrl, 'GET', path, { ...fresh, 'x-signature': flipped })
  assert.equal(tamperedSignature.status, 401, 'a changed signature')
  // The tampered attempts did not spend the nonce: the untouched request still passes.
  assert.equal((await send(baseUrl, 'GET', path, fresh)).status, 200)

  const stale = signRequest({ method: 'GET', path }, KEY, { nowMs: Date.now() - 10 * 60_000 })
  assert.equal((await send(baseUrl, 'GET', path, stale)).status, 401, 'ten minutes old')
  const future = signRequest({ method: 'GET', path }, KEY, { nowMs: Date.now() + 10 * 60_000 })
  assert.equal((await send(baseUrl, 'GET', path, future)).status, 401, 'ten minutes ahead')

  assert.equal((await send(baseUrl, 'GET', path, {})).status, 401, 'unsigned')
  const stranger = signRequest({ method: 'GET', path }, { keyId: 'stranger', secret: KEY.secret })
  assert.equal((await send(baseUrl, 'GET', path, stranger)).status, 401, 'unknown key id')
  const old = signRequest({ method: 'GET', path }, OLD_KEY)
  assert.equal((await send(baseUrl, 'GET', path, old)).status, 200, 'every configured key verifies')

  // 401 comes before input validation: an unsigned caller learns nothing about the route.
  assert.equal((await send(baseUrl, 'GET', '/internal/users/not-an-id', {})).status, 401)
})

test('the signature covers the raw body: a changed body gets 401, the signed one 200', async (t) => {
  const { baseUrl, alice } = await signedApp(t)
  const path = '/internal/users/batch'
  const body = JSON.stringify({ ids: [alice.id] })
  const json = { 'content-type': 'application/json' }

  const tampered = signRequest({ method: 'POST', path, body }, KEY)
  const changed = JSON.stringify({ ids: [alice.id, '1'] })
  assert.equal((await send(baseUrl, 'POST', path, { ...json, ...tampered }, changed)).status, 401)
  // Same JSON value, different bytes: the raw bytes are what is signed.
  const respaced = await send(baseUrl, 'POST', path, { ...json, ...tampered }, ` ${body}`)
  assert.equal(respaced.status, 401)

  const good = signRequest({ method: 'POST', path, body }, KEY)
  const answer = await send(baseUrl, 'POST', path, { ...json, ...good }, body)
  assert.equal(answer.status, 200)
  assert.deepEqual(
    answer.body.users.map((user: { id: string }) => user.id),
    [alice.id],
  )

  const invalid = JSON.stringify({ ids: [] })
  const signedInvalid = signRequest({ method: 'POST', path, body: invalid }, KEY)
  const rejected = await send(baseUrl, 'POST', path, { ...json, ...signedInvalid }, invalid)
  assert.equal(rejected.status, 422, 'a signed request is validated as usual')
})

test('without INTERNAL_HMAC_KEYS every /internal request is refused', async (t) => {
  const { baseUrl, container } = await integrationApp(t)
  assert.equal(container.integrations.signedHttp, undefined)
  const path = '/internal/users/1'
  const headers = signRequest({ method: 'GET', path }, KEY)
  assert.equal((await send(baseUrl, 'GET', path, headers)).status, 401)
})

test(
  'in distributed mode a request replayed to another replica is refused: nonces live in Redis',
  await whenReachable('redis'),
  async (t) => {
    const { prefix } = await useRedisPrefix(t)
    const env = {
      APP_NAME: prefix,
      REDIS_URL: serviceUrls.redis,
      INTERNAL_HMAC_KEYS: `${KEY.keyId}:${KEY.secret}`,
    }
    const replicaA = await integrationApp(t, env)
    const replicaB = await integrationApp(t, env)
    // Each replica has its own SQLite file here: B does not know the user, so a fresh
    // signature gets 404 from it, and only a replay gets 401.
    const alice = await signUp(replicaA.baseUrl, `alice-${prefix}`)
    const path = `/internal/users/${alice.id}`
    const headers = signRequest({ method: 'GET', path }, KEY)
    assert.equal((await send(replicaA.baseUrl, 'GET', path, headers)).status, 200)
    assert.equal((await send(replicaB.baseUrl, 'GET', path, headers)).status, 401)
    const fresh = signRequest({ method: 'GET', path }, KEY)
    assert.equal((await send(replicaB.baseUrl, 'GET', path, fresh)).status, 404)
  },
)
