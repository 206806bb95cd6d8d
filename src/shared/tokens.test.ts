import assert from 'node:assert/strict'
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../config/index.ts'
import { createTokenService, type TokenService } from './tokens.ts'

const dir = mkdtempSync(join(tmpdir(), 'servekit-tokens-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const SECRET = 'a-test-secret-that-is-long-enough-0123456789'
const nowSeconds = () => Math.floor(Date.now() / 1000)

interface KeyFiles {
  privateFile: string
  publicFile: string
  privateKey: KeyObject
  publicPem: string
}

let keyCount = 0
function writeKeyPair(type: 'rsa' | 'ec', options: { modulusLength?: number } = {}): KeyFiles {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: options.modulusLength ?? 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  keyCount += 1
  const privateFile = join(dir, `key-${keyCount}.pem`)
  const publicFile = join(dir, `key-${keyCount}.pub.pem`)
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString()
  writeFileSync(privateFile, privateKey.export({ format: 'pem', type: 'pkcs8' }))
  writeFileSync(publicFile, publicPem)
  return { privateFile, publicFile, privateKey, publicPem }
}

function serviceFor(env: Record<string, string>): TokenService {
  return createTokenService(loadConfig({ JWT_SECRET: SECRET, ...env }, { readFiles: false }))
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

type Signing =
  | { alg: 'HS256'; secret: string | Buffer }
  | { alg: 'RS256' | 'ES256'; key: KeyObject }
  | { alg: 'none' }

/** Builds a JWT by hand, so that nothing a library refuses to produce is out of reach. */
function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signing: Signing,
) {
  const input = `${b64({ typ: 'JWT', ...header, alg: header.alg ?? signing.alg })}.${b64(payload)}`
  if (signing.alg === 'none') return `${input}.`
  if (signing.alg === 'HS256')
    return `${input}.${createHmac('sha256', signing.secret).update(input).digest('base64url')}`
  const signature = createSign('sha256')
    .update(input)
    .sign(
      signing.alg === 'ES256' ? { key: signing.key, dsaEncoding: 'ieee-p1363' } : signing.key,
      'base64url',
    )
  return `${input}.${signature}`
}

function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds()
  return {
    sub: '7212345678901234567',
    jti: 'a-token-id',
    iat: now,
    exp: now + 600,
    iss: 'servekit',
    aud: 'servekit-api',
    ...overrides,
  }
}

async function assertRefused(
  tokens: TokenService,
  token: string,
  code = 'AUTH_INVALID_TOKEN',
): Promise<void> {
  await assert.rejects(tokens.verify(token), (error: Error & Record<string, unknown>) => {
    assert.equal(error.name, 'AppError')
    assert.equal(error.kind, 'unauthorized')
    assert.equal(error.code, code)
    assert.match(error.message, /^(Could not validate credentials|Token has expired)$/)
    return true
  })
}

describe('issuing and verifying', () => {
  for (const algorithm of ['HS256', 'RS256', 'ES256'] as const) {
    test(`an ${algorithm} token issued for a user verifies, with every claim`, async () => {
      const keys =
        algorithm === 'HS256' ? undefined : writeKeyPair(algorithm === 'RS256' ? 'rsa' : 'ec')
      const tokens = serviceFor({
        JWT_ALGORITHM: algorithm,
        JWT_EXPIRES_SECONDS: '900',
        ...(keys
          ? { JWT_PRIVATE_KEY_FILE: keys.privateFile, JWT_PUBLIC_KEY_FILE: keys.publicFile }
          : {}),
      })
      const before = nowSeconds()
      const issued = await tokens.issue('7212345678901234567')
      const claims = await tokens.verify(issued.token)

      assert.equal(claims.sub, '7212345678901234567')
      assert.equal(claims.jti, issued.jti)
      assert.match(issued.jti, /^[0-9a-f-]{36}$/)
      assert.equal(claims.iss, 'servekit')
      assert.equal(claims.aud, 'servekit-api')
      assert.equal(claims.exp, issued.expiresAt)
      assert.ok(claims.iat >= before && claims.iat <= nowSeconds())
      assert.equal(claims.exp - claims.iat, 900)
      assert.equal(issued.expiresInSeconds, 900)

      const header = JSON.parse(
        Buffer.from(issued.token.split('.')[0] as string, 'base64url').toString(),
      )
      assert.deepEqual(header, { alg: algorithm, typ: 'JWT', kid: tokens.keyId })
      assert.notEqual((await tokens.issue('7212345678901234567')).jti, issued.jti)
    })
  }

  test('the kid is derived from the key: stable for one key, different for another', () => {
    const rsa = writeKeyPair('rsa')
    const env = { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: rsa.publicFile }
    assert.equal(serviceFor(env).keyId, serviceFor(env).keyId)
    assert.match(serviceFor(env).keyId, /^[A-Za-z0-9_-]{43}$/, 'an RFC 7638 SHA-256 thumbprint')
    const other = writeKeyPair('rsa')
    assert.notEqual(
      serviceFor({ ...env, JWT_PUBLIC_KEY_FILE: other.publicFile }).keyId,
      serviceFor(env).keyId,
    )
    const hs = serviceFor({}).keyId
    assert.equal(hs, serviceFor({}).keyId)
    assert.notEqual(hs, serviceFor({ JWT_SECRET: `${SECRET}-rotated` }).keyId)
    assert.ok(!hs.includes(SECRET.slice(0, 8)))
  })

  test('each verify returns its own claims: mutating them cannot poison the cache', async () => {
    const tokens = serviceFor({})
    const { token } = await tokens.issue('42')
    const first = await tokens.verify(token)
    first.sub = '1'
    const second = await tokens.verify(token)
    assert.equal(second.sub, '42')
  })

  test('a cached token is refused once it expires', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    const tokens = serviceFor({ JWT_EXPIRES_SECONDS: '60' })
    const { token } = await tokens.issue('42')
    await tokens.verify(token)
    t.mock.timers.tick(55_000)
    assert.equal((await tokens.verify(token)).sub, '42', 'served from the cache')
    t.mock.timers.tick(11_000)
    await assertRefused(tokens, token, 'AUTH_TOKEN_EXPIRED')
  })

  test('a token issued by a clock an hour behind is expired', async () => {
    const tokens = createTokenService(loadConfig({ JWT_SECRET: SECRET }, { readFiles: false }), {
      now: () => Date.now() - 3_700_000,
    })
    await assertRefused(tokens, (await tokens.issue('42')).token, 'AUTH_TOKEN_EXPIRED')
  })

  test('a process with only the public key verifies but cannot issue', async () => {
    const ec = writeKeyPair('ec')
    const signer = serviceFor({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: ec.privateFile })
    const verifier = serviceFor({ JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY_FILE: ec.publicFile })
    assert.equal(signer.keyId, verifier.keyId, 'the public key is derived from the private one')
    const { token } = await signer.issue('42')
    assert.equal((await verifier.verify(token)).sub, '42')
    await assert.rejects(verifier.issue('42'), /JWT_PRIVATE_KEY_FILE is not set/)
  })
})

describe('forged and invalid tokens are refused', () => {
  const hs = serviceFor({})
  const rsa = writeKeyPair('rsa')
  const rs = serviceFor({
    JWT_ALGORITHM: 'RS256',
    JWT_PRIVATE_KEY_FILE: rsa.privateFile,
    JWT_PUBLIC_KEY_FILE: rsa.publicFile,
  })
  const ec = writeKeyPair('ec')
  const es = serviceFor({
    JWT_ALGORITHM: 'ES256',
    JWT_PRIVATE_KEY_FILE: ec.privateFile,
    JWT_PUBLIC_KEY_FILE: ec.publicFile,
  })
  const hsHeader = { alg: 'HS256', kid: hs.keyId }
  const hsKey = { alg: 'HS256', secret: SECRET } as const

  test('the forging helper makes tokens the services accept (so refusals below are real)', async () => {
    assert.equal(
      (await hs.verify(forge(hsHeader, validClaims(), hsKey))).sub,
      '7212345678901234567',
    )
    const rsToken = forge({ kid: rs.keyId }, validClaims(), { alg: 'RS256', key: rsa.privateKey })
    assert.equal((await rs.verify(rsToken)).jti, 'a-token-id')
    const esToken = forge({ kid: es.keyId }, validClaims(), { alg: 'ES256', key: ec.privateKey })
    assert.equal((await es.verify(esToken)).jti, 'a-token-id')
  })

  test('1. alg none', async () => {
    await assertRefused(hs, forge({ alg: 'none', kid: hs.keyId }, validClaims(), { alg: 'none' }))
    await assertRefused(rs, forge({ alg: 'none', kid: rs.keyId }, validClaims(), { alg: 'none' }))
    await assertRefused(hs, forge({ alg: 'NONE', kid: hs.keyId }, validClaims(), { alg: 'none' }))
  })

  test('2. HS256 signed with the public key, against RS256 and ES256 (algorithm confusion)', async () => {
    for (const publicPem of [rsa.publicPem, rsa.publicPem.trim()]) {
      const token = forge({ alg: 'HS256', kid: rs.keyId }, validClaims(), {
        alg: 'HS256',
        secret: publicPem,
      })
      await assertRefused(rs, token)
    }
    const token = forge({ alg: 'HS256', kid: es.keyId }, validClaims(), {
      alg: 'HS256',
      secret: ec.publicPem,
    })
    await assertRefused(es, token)
  })

  test('3. no exp', async () => {
    const { exp: _exp, ...claims } = validClaims()
    await assertRefused(hs, forge(hsHeader, claims, hsKey))
  })

  test('4. expired', async () => {
    const now = nowSeconds()
    const token = forge(hsHeader, validClaims({ iat: now - 700, exp: now - 100 }), hsKey)
    await assertRefused(hs, token, 'AUTH_TOKEN_EXPIRED')
  })

  test('5. nbf in the future', async () => {
    await assertRefused(hs, forge(hsHeader, validClaims({ nbf: nowSeconds() + 600 }), hsKey))
  })

  test('6. wrong iss', async () => {
    await assertRefused(hs, forge(hsHeader, validClaims({ iss: 'someone-else' }), hsKey))
    const { iss: _iss, ...claims } = validClaims()
    await assertRefused(hs, forge(hsHeader, claims, hsKey))
  })

  test('7. wrong aud', async () => {
    await assertRefused(hs, forge(hsHeader, validClaims({ aud: 'another-api' }), hsKey))
    await assertRefused(hs, forge(hsHeader, validClaims({ aud: ['another-api'] }), hsKey))
  })

  test('8. payload changed and re-encoded without re-signing', async () => {
    const { token } = await hs.issue('1000')
    const [header, payload, signature] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const tampered = `${header}.${b64({ ...claims, sub: '1' })}.${signature}`
    await assertRefused(hs, tampered)
    const longer = `${header}.${b64({ ...claims, exp: claims.exp + 86_400 })}.${signature}`
    await assertRefused(hs, longer)
  })

  test('9. bad signature', async () => {
    const { token } = await rs.issue('42')
    const [header, payload, signature] = token.split('.') as [string, string, string]
    const flipped = signature[10] === 'A' ? 'B' : 'A'
    const bad = `${header}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`
    await assertRefused(rs, bad)
    await assertRefused(rs, `${header}.${payload}.`)
    await assertRefused(rs, `${header}.${payload}`)
  })

  test('10. signed with another secret or key', async () => {
    await assertRefused(
      hs,
      forge(hsHeader, validClaims(), { alg: 'HS256', secret: `${SECRET}-other` }),
    )
    const stranger = writeKeyPair('rsa')
    await assertRefused(
      rs,
      forge({ kid: rs.keyId }, validClaims(), { alg: 'RS256', key: stranger.privateKey }),
    )
  })

  test('11. unknown kid', async () => {
    await assertRefused(hs, forge({ alg: 'HS256', kid: 'another-key' }, validClaims(), hsKey))
    await assertRefused(hs, forge({ alg: 'HS256' }, validClaims(), hsKey))
    const rsToken = forge({ kid: 'another-key' }, validClaims(), {
      alg: 'RS256',
      key: rsa.privateKey,
    })
    await assertRefused(rs, rsToken)
  })

  test('12. garbage', async () => {
    for (const garbage of [
      '',
      'garbage',
      'not.a.token',
      'a.b.c.d',
      '...',
      `${b64({ alg: 'HS256' })}.%%%.***`,
      'x'.repeat(100_000),
      undefined as unknown as string,
      42 as unknown as string,
    ])
      await assertRefused(hs, garbage)
  })

  test('and more: another algorithm, iat in the future, missing or mistyped claims, typ', async () => {
    const hs512 = `${b64({ alg: 'HS512', typ: 'JWT', kid: hs.keyId })}.${b64(validClaims())}`
    await assertRefused(
      hs,
      `${hs512}.${createHmac('sha512', SECRET).update(hs512).digest('base64url')}`,
    )
    await assertRefused(
      rs,
      forge({ kid: es.keyId }, validClaims(), { alg: 'ES256', key: ec.privateKey }),
    )
    await assertRefused(hs, forge(hsHeader, validClaims({ iat: nowSeconds() + 600 }), hsKey))
    for (const claim of ['sub', 'jti', 'iat']) {
      const { [claim]: _dropped, ...claims } = validClaims()
      await assertRefused(hs, forge(hsHeader, claims, hsKey))
    }
    await assertRefused(hs, forge(hsHeader, validClaims({ sub: 42 }), hsKey))
    await assertRefused(hs, forge(hsHeader, validClaims({ jti: '' }), hsKey))
    await assertRefused(hs, forge(hsHeader, validClaims({ exp: 'tomorrow' }), hsKey))
    await assertRefused(
      hs,
      forge(hsHeader, validClaims({ iat: nowSeconds() - 86_400 * 2 }), hsKey),
      'AUTH_TOKEN_EXPIRED',
    )
    await assertRefused(hs, forge({ ...hsHeader, typ: 'at+jwt' }, validClaims(), hsKey))
  })
})

describe('key settings are checked at start-up', () => {
  test('RS256 or ES256 without key files is refused', () => {
    assert.throws(() => serviceFor({ JWT_ALGORITHM: 'RS256' }), ConfigError)
  })

  test('a key of the wrong kind or size is refused, naming the setting', () => {
    const ec = writeKeyPair('ec')
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: ec.publicFile }),
      /JWT_PUBLIC_KEY_FILE is invalid: RS256 expects an RSA key/,
    )
    const weak = writeKeyPair('rsa', { modulusLength: 1024 })
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: weak.privateFile }),
      /at least 2048 bits/,
    )
    const rsa = writeKeyPair('rsa')
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: rsa.privateFile }),
      /ES256 expects an EC key on the P-256 curve/,
    )
  })

  test('a private and public key that do not belong together are refused', () => {
    const one = writeKeyPair('rsa')
    const two = writeKeyPair('rsa')
    assert.throws(
      () =>
        serviceFor({
          JWT_ALGORITHM: 'RS256',
          JWT_PRIVATE_KEY_FILE: one.privateFile,
          JWT_PUBLIC_KEY_FILE: two.publicFile,
        }),
      /do not belong together/,
    )
  })

  test('a missing or unreadable key file is refused, naming the setting', () => {
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: join(dir, 'absent.pem') }),
      /JWT_PUBLIC_KEY_FILE=".*absent\.pem" cannot be read: ENOENT/,
    )
    const notPem = join(dir, 'not.pem')
    writeFileSync(notPem, 'hello')
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY_FILE: notPem }),
      /JWT_PUBLIC_KEY_FILE is invalid/,
    )
    const ec = writeKeyPair('ec')
    assert.throws(
      () => serviceFor({ JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY_FILE: ec.privateFile }),
      /JWT_PUBLIC_KEY_FILE is invalid: it holds a private key/,
    )
  })

  test('an HMAC secret shorter than 32 bytes is refused, even from a hand-built config', () => {
    const config = { ...loadConfig({}, { readFiles: false }), JWT_SECRET: 'x'.repeat(31) }
    assert.throws(
      () => createTokenService(config),
      /JWT_SECRET=\(value hidden\).*at least 32 bytes/,
    )
  })
})
