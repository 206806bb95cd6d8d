import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, describe, type TestContext, test } from 'node:test'
import { setTimeout } from 'node:timers/promises'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { loadConfig } from '../../config/index.ts'
import { type Cache, createMemoryCache, createRedisCache } from '../../infra/cache/index.ts'
import { createRedis, type RedisConnection } from '../../infra/redis/index.ts'
import { createTokenService, TOKEN_CLOCK_TOLERANCE_SECONDS } from '../../shared/tokens.ts'
import { createTokenStore, type TokenStore } from './token-store.ts'

interface Subject {
  cache: Cache
  store: TokenStore
  /** The keys as stored, prefix included. */
  storedKeys(): Promise<string[]>
}

const redisAvailability = await whenReachable('redis')
let connection: RedisConnection | undefined
const redis = async () => {
  connection ??= await createRedis(serviceUrls.redis, pino({ level: 'silent' }))
  return connection.client
}
after(() => connection?.close())

const uniquePrefix = () => `t-token-store-${randomBytes(6).toString('hex')}`
const nowSeconds = () => Math.floor(Date.now() / 1000)

async function scanKeys(pattern: string): Promise<string[]> {
  const client = await redis()
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

const implementations: Array<{
  name: string
  skip: string | false
  make(t: TestContext): Promise<Subject & { prefix: string }>
}> = [
  {
    name: 'memory',
    skip: false,
    async make(t) {
      const prefix = uniquePrefix()
      const cache = createMemoryCache({ prefix, maxEntries: 1000 })
      t.after(() => cache.close())
      return {
        cache,
        prefix,
        store: createTokenStore({ cache }),
        storedKeys: async () => cache.keys(),
      }
    },
  },
  {
    name: 'redis',
    skip: redisAvailability.skip,
    async make(t) {
      const client = await redis()
      const prefix = uniquePrefix()
      const cache = createRedisCache({ redis: client, prefix })
      t.after(async () => {
        const keys = await scanKeys(`${prefix}:*`)
        if (keys.length > 0) await client.del(...keys)
      })
      return {
        cache,
        prefix,
        store: createTokenStore({ cache }),
        storedKeys: () => scanKeys(`${prefix}:*`),
      }
    },
  },
]

for (const implementation of implementations) {
  describe(`token store on the ${implementation.name} cache`, { skip: implementation.skip }, () => {
    test('a remembered token is live; one never remembered counts as revoked', async (t) => {
      const { store } = await implementation.make(t)
      const jti = randomUUID()
      await store.remember('42', jti, nowSeconds() + 600)
      assert.equal(await store.isRevoked(jti), false)
      assert.equal(await store.isRevoked(randomUUID()), true)
    })

    test('logout revokes that token and no other', async (t) => {
      const { store, cache } = await implementation.make(t)
      const [first, second] = [randomUUID(), randomUUID()]
      await store.remember('42', first, nowSeconds() + 600)
      await store.remember('42', second, nowSeconds() + 600)
      await store.revoke(first)
      assert.equal(await store.isRevoked(first), true)
      assert.equal(await store.isRevoked(second), false)
      assert.deepEqual(Object.keys(await cache.hashGetAll('auth:user-tokens:42')), [second])
      await store.revoke(first)
      await store.revoke(randomUUID())
      assert.equal(await store.isRevoked(second), false, 'revoking twice or unknown is harmless')
    })

    test("logout-all revokes every token of the user and none of another user's", async (t) => {
      const { store } = await implementation.make(t)
      const mine = Array.from({ length: 5 }, () => randomUUID())
      for (const jti of mine) await store.remember('42', jti, nowSeconds() + 600)
      const theirs = randomUUID()
      await store.remember('43', theirs, nowSeconds() + 600)

      await store.revokeAll('42')
      for (const jti of mine) assert.equal(await store.isRevoked(jti), true)
      assert.equal(await store.isRevoked(theirs), false)
      await store.revokeAll('42')

      const later = randomUUID()
      await store.remember('42', later, nowSeconds() + 600)
      assert.equal(await store.isRevoked(later), false, 'a new login after logout-all works')
    })

    test('logout-all racing with logins never leaves a live token off the list', async (t) => {
      const { store } = await implementation.make(t)
      const jtis = Array.from({ length: 20 }, () => randomUUID())
      await Promise.all([
        ...jtis.map((jti) => store.remember('42', jti, nowSeconds() + 600)),
        store.revokeAll('42'),
      ])
      await store.revokeAll('42')
      for (const jti of jtis) assert.equal(await store.isRevoked(jti), true)
    })

    test("each key expires with its token (plus the verifier's clock tolerance)", async (t) => {
      const { store, cache } = await implementation.make(t)
      const jti = randomUUID()
      await store.remember('42', jti, nowSeconds() + 600)
      const expected = 600 + TOKEN_CLOCK_TOLERANCE_SECONDS
      const tokenTtl = await cache.ttl(`auth:token:${jti}`)
      assert.ok(tokenTtl > expected - 3 && tokenTtl <= expected, `token key ttl ${tokenTtl}`)

      await store.remember('42', randomUUID(), nowSeconds() + 1200)
      await store.remember('42', randomUUID(), nowSeconds() + 300)
      const listTtl = await cache.ttl('auth:user-tokens:42')
      assert.ok(
        listTtl > 1200 && listTtl <= 1200 + expected,
        `the list lives as long as its last token: ${listTtl}`,
      )
    })

    test('a token already expired is not stored at all', async (t) => {
      const { store, storedKeys } = await implementation.make(t)
      const jti = randomUUID()
      await store.remember('42', jti, nowSeconds() - 3600)
      assert.equal(await store.isRevoked(jti), true)
      assert.deepEqual(await storedKeys(), [])
    })

    test("keys live under the cache's APP_NAME prefix", async (t) => {
      const { store, storedKeys, prefix } = await implementation.make(t)
      const jti = randomUUID()
      await store.remember('42', jti, nowSeconds() + 600)
      assert.deepEqual((await storedKeys()).sort(), [
        `${prefix}:auth:token:${jti}`,
        `${prefix}:auth:user-tokens:42`,
      ])
    })

    test('a revoked token is refused even while the verifier still has it cached', async (t) => {
      const { store } = await implementation.make(t)
      const tokens = createTokenService(loadConfig({}, { readFiles: false }))
      const authenticate = async (token: string) => {
        const claims = await tokens.verify(token)
        return !(await store.isRevoked(claims.jti))
      }
      const issued = await tokens.issue('42')
      await store.remember('42', issued.jti, issued.expiresAt)
      assert.equal(await authenticate(issued.token), true)
      await store.revoke(issued.jti)
      assert.equal(
        (await tokens.verify(issued.token)).jti,
        issued.jti,
        'the signature is still fine',
      )
      assert.equal(await authenticate(issued.token), false)
    })
  })
}

describe('token store on the memory cache, with a clock', () => {
  const clocked = (t: TestContext, maxEntries = 1000) => {
    let nowMs = Date.now()
    const clock = { now: () => nowMs }
    const cache = createMemoryCache({
      prefix: uniquePrefix(),
      maxEntries,
      clock,
      sweepIntervalMs: 5,
    })
    t.after(() => cache.close())
    const advance = (seconds: number) => {
      nowMs += seconds * 1000
    }
    return { cache, clock, advance, store: createTokenStore({ cache, now: clock.now }) }
  }

  test('entries vanish once their token has expired, so the store does not grow', async (t) => {
    const { cache, store, clock, advance } = clocked(t)
    const expiresAt = Math.floor(clock.now() / 1000) + 60
    for (let i = 0; i < 50; i++) await store.remember(String(i), randomUUID(), expiresAt)
    assert.equal(cache.size, 100)
    advance(60 + TOKEN_CLOCK_TOLERANCE_SECONDS + 1)
    await setTimeout(50)
    assert.deepEqual(cache.keys(), [], 'swept without being read')
  })

  test("a login prunes the user's expired tokens from the list", async (t) => {
    const { cache, store, clock, advance } = clocked(t)
    const old = randomUUID()
    await store.remember('42', old, Math.floor(clock.now() / 1000) + 60)
    await store.remember('42', randomUUID(), Math.floor(clock.now() / 1000) + 600)
    advance(120)
    const fresh = randomUUID()
    await store.remember('42', fresh, Math.floor(clock.now() / 1000) + 600)
    const listed = Object.keys(await cache.hashGetAll('auth:user-tokens:42'))
    assert.equal(listed.length, 2)
    assert.ok(!listed.includes(old))
  })

  test('an entry evicted from a full cache logs that session out rather than letting it in', async (t) => {
    const { cache, store, clock } = clocked(t, 100)
    const jti = randomUUID()
    await store.remember('42', jti, Math.floor(clock.now() / 1000) + 600)
    for (let i = 0; i < 200; i++) await cache.set(`items:${i}`, 'x')
    assert.equal(await store.isRevoked(jti), true)
  })
})
