import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, runCli } from '../helpers/process.ts'
import {
  decodeJwt,
  hs256Jwt,
  registerAndLogin,
  rs256Jwt,
  startServe,
  unsignedJwt,
} from './auth-fault-helpers.ts'
import { expectFigure } from './figures.ts'

type Claims = Record<string, unknown>
type Header = Record<string, unknown>

interface Signing {
  algorithm: 'HS256' | 'RS256'
  env: Record<string, string>
  /** Signs with the service's own key: a forger holding the key (claim checks must still hold). */
  sign(header: Header, payload: Claims): string
  /** Signs with a key that is not the service's. */
  signWithOtherKey(header: Header, payload: Claims): string
  /** The algorithm-substitution attack that fits this service. */
  confusion: { name: string; forge(header: Header, payload: Claims): string }
}

const PASSWORD = 'correct horse battery staple'

/**
 * Registers a user and a victim, takes the user's genuine token, and forges twelve others from
 * it. Each forgery keeps the genuine token's jti (a live, unrevoked one), so revocation is never
 * what turns them away; and the same claims re-signed by the forger with the service's own key
 * must pass, so each rejection is down to the one defect the forgery carries.
 */
async function sweepForgeries(t: TestContext, signing: Signing): Promise<void> {
  const server = await startServe(t, { JWT_ALGORITHM: signing.algorithm, ...signing.env })
  const me = `${server.base}/api/users/me`
  const suffix = randomBytes(3).toString('hex')
  const genuine = await registerAndLogin(server.base, `user-${suffix}`, PASSWORD)
  const victimToken = await registerAndLogin(server.base, `victim-${suffix}`, PASSWORD)
  const victimId = decodeJwt(victimToken).payload.sub as string
  const { header, payload } = decodeJwt(genuine)
  const now = Math.floor(Date.now() / 1000)
  const live = { ...payload, iat: now, exp: now + 600 }
  const { exp: _exp, ...withoutExp } = live
  const [genuineHead, genuineBody, genuineSignature] = genuine.split('.') as [
    string,
    string,
    string,
  ]
  const flipped = `${genuineSignature[0] === 'A' ? 'B' : 'A'}${genuineSignature.slice(1)}`

  const forgeries: Record<string, string> = {
    'alg none': unsignedJwt({ ...header, alg: 'none' }, live),
    [signing.confusion.name]: signing.confusion.forge(header, live),
    'no exp': signing.sign(header, withoutExp),
    expired: signing.sign(header, { ...live, iat: now - 600, exp: now - 300 }),
    'future nbf': signing.sign(header, { ...live, nbf: now + 3600 }),
    'iat in the future': signing.sign(header, { ...live, iat: now + 3600, exp: now + 4200 }),
    'wrong iss': signing.sign(header, { ...live, iss: 'someone-else' }),
    'wrong aud': signing.sign(header, { ...live, aud: 'another-api' }),
    'changed payload (sub of another user)': `${genuineHead}.${Buffer.from(
      JSON.stringify({ ...payload, sub: victimId }),
    ).toString('base64url')}.${genuineSignature}`,
    'bad signature': `${genuineHead}.${genuineBody}.${flipped}`,
    'unknown kid': signing.sign({ ...header, kid: 'not-our-key' }, live),
    'signed with another key': signing.signWithOtherKey(header, live),
  }
  assert.equal(Object.keys(forgeries).length, 12)

  const statusOf = async (token: string) => {
    const response = await fetch(me, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    })
    const body = await response.text()
    return { status: response.status, body }
  }
  const controls = {
    genuine: await statusOf(genuine),
    resigned: await statusOf(signing.sign(header, live)),
  }
  const refused: string[] = []
  const admitted: string[] = []
  const bodies: string[] = []
  for (const [name, token] of Object.entries(forgeries)) {
    const { status, body } = await statusOf(token)
    bodies.push(body)
    if (status === 401) refused.push(name)
    else admitted.push(`${name}: ${status}`)
  }

  expectFigure(t, {
    item: 10,
    name: `forged and invalid tokens, ${signing.algorithm} service`,
    measured: `${refused.length}/12 got 401${admitted.length ? ` (not: ${admitted.join('; ')})` : ''}; controls: genuine ${controls.genuine.status}, same claims re-signed by the test ${controls.resigned.status}`,
    pass: '12/12 401; both controls 200',
    ok:
      refused.length === 12 && controls.genuine.status === 200 && controls.resigned.status === 200,
  })
  for (const body of bodies)
    assert.match(
      body,
      /"code":"AUTH_(INVALID_TOKEN|TOKEN_EXPIRED)"/,
      'the error shape, a token code',
    )
  // The genuine token is still good: no forgery revoked or otherwise spoiled it.
  assert.equal((await statusOf(genuine)).status, 200)
}

test('twelve forged or invalid tokens get 401 on an RS256 service', async (t) => {
  const dir = scratchDir()
  const own = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicPem = own.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  writeFileSync(
    join(dir, 'private.pem'),
    own.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  )
  writeFileSync(join(dir, 'public.pem'), publicPem)
  await sweepForgeries(t, {
    algorithm: 'RS256',
    env: {
      JWT_PRIVATE_KEY_FILE: join(dir, 'private.pem'),
      JWT_PUBLIC_KEY_FILE: join(dir, 'public.pem'),
    },
    sign: (header, payload) => rs256Jwt(header, payload, own.privateKey),
    signWithOtherKey: (header, payload) => rs256Jwt(header, payload, other.privateKey),
    confusion: {
      name: 'HS256 signed with the RS256 public key',
      forge: (header, payload) => hs256Jwt({ ...header, alg: 'HS256' }, payload, publicPem),
    },
  })
})

test('twelve forged or invalid tokens get 401 on an HS256 service', async (t) => {
  const secret = randomBytes(32).toString('base64url')
  const otherSecret = randomBytes(32).toString('base64url')
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await sweepForgeries(t, {
    algorithm: 'HS256',
    env: { JWT_SECRET: secret },
    sign: (header, payload) => hs256Jwt(header, payload, secret),
    signWithOtherKey: (header, payload) => hs256Jwt(header, payload, otherSecret),
    confusion: {
      name: "RS256 signed with the attacker's key, embedded as jwk",
      forge: (header, payload) =>
        rs256Jwt(
          { ...header, alg: 'RS256', jwk: attacker.publicKey.export({ format: 'jwk' }) },
          payload,
          attacker.privateKey,
        ),
    },
  })
})

test('prod refuses to start with an HMAC secret shorter than 32 bytes, without showing it', async (t) => {
  const secret = `Sh0rtS3cret-${randomBytes(8).toString('hex')}-x` // 29 bytes
  assert.ok(Buffer.byteLength(secret) < 32)
  const running = runCli(['serve'], {
    APP_ENV: 'prod',
    LOG_LEVEL: 'info',
    JWT_ALGORITHM: 'HS256',
    JWT_SECRET: secret,
    DATABASE_URL: `sqlite:${join(scratchDir(), 'prod.db')}`,
    PORT: String(await freePort()),
  })
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 30_000)
  t.after(() => {
    clearTimeout(timer)
    if (running.child.exitCode === null) running.child.kill('SIGKILL')
  })
  const code = await running.exited
  const output = running.output()
  const message = output.split('\n').find((line) => line.includes('JWT_SECRET')) ?? ''
  const isClear = /at least 32/.test(message)
  const leaks = output.includes(secret) || output.includes(secret.slice(0, 16))
  expectFigure(t, {
    item: 10,
    name: 'prod start-up with a 29-byte HMAC secret',
    measured: `exit ${code}; ${isClear ? 'names JWT_SECRET and the 32-byte rule' : `message: ${JSON.stringify(message.slice(0, 200))}`}; secret ${leaks ? 'SHOWN' : 'not'} in the output`,
    pass: 'non-zero exit, a clear message, secret not shown',
    ok: typeof code === 'number' && code !== 0 && isClear && !leaks,
  })
  // It is refused while reading its config: nothing was listening.
  assert.doesNotMatch(output, /listening/i)
})
