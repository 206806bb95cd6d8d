import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { Redis } from 'ioredis'
import { scanKeys, startRedisTestServer } from '../../src/infra/redis/redis-testing.ts'
import { buildTestApp } from '../helpers/app.ts'
import { serviceUrls, useRedisPrefix, whenReachable } from '../helpers/services.ts'

const appName = () => `t-${randomBytes(4).toString('hex')}`

async function signIn(baseUrl: string): Promise<string> {
  const credentials = {
    username: `u${randomBytes(3).toString('hex')}`,
    password: 'a-good-password',
  }
  const post = (path: string) =>
    fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    })
  assert.equal((await post('/api/auth/register')).status, 201)
  return ((await (await post('/api/auth/login')).json()) as { access_token: string }).access_token
}

async function createItem(baseUrl: string, token: string, price: number): Promise<string> {
  const response = await fetch(`${baseUrl}/api/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'Kettle', price, stock: 5 }),
  })
  assert.equal(response.status, 201)
  return ((await response.json()) as { id: string }).id
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`)
}

describe('item cache in distributed mode', async () => {
  const redisUp = await whenReachable('redis')

  test(
    'a GET puts the item under APP_NAME in Redis; an update changes what the next GET returns',
    redisUp,
    async (t) => {
      const { prefix: name, redis } = await useRedisPrefix(t)
      const { baseUrl } = await buildTestApp(t, {
        APP_NAME: name,
        REDIS_URL: serviceUrls.redis,
        BCRYPT_COST: '4',
      })
      const token = await signIn(baseUrl)
      const id = await createItem(baseUrl, token, 10)

      assert.equal((await fetch(`${baseUrl}/api/items/${id}`)).status, 200)
      assert.deepEqual(await scanKeys(redis, `${name}:item:*`), [`${name}:item:${id}`])
      const cached = JSON.parse((await redis.get(`${name}:item:${id}`)) ?? '{}') as {
        price: number
      }
      assert.equal(cached.price, 10)

      const patch = await fetch(`${baseUrl}/api/items/${id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ price: 12.5 }),
      })
      assert.equal(patch.status, 200)
      const after = (await (await fetch(`${baseUrl}/api/items/${id}`)).json()) as { price: number }
      assert.equal(after.price, 12.5)
    },
  )

  test('with Redis stopped, GET item answers from the database and /ready is 503; after a restart the cache fills again', async (t) => {
    const server = await startRedisTestServer()
    t.after(() => server.stop())
    const name = appName()
    const { baseUrl } = await buildTestApp(t, {
      APP_NAME: name,
      REDIS_URL: server.url,
      BCRYPT_COST: '4',
    })
    const token = await signIn(baseUrl)
    const id = await createItem(baseUrl, token, 7)
    assert.equal((await fetch(`${baseUrl}/api/items/${id}`)).status, 200)

    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    t.after(() => process.off('unhandledRejection', onUnhandled))

    await server.stop()
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${baseUrl}/api/items/${id}`)
      assert.equal(response.status, 200, 'reads fall back to the database')
      assert.equal(((await response.json()) as { price: number }).price, 7)
    }
    const ready = await fetch(`${baseUrl}/ready`)
    assert.equal(ready.status, 503)
    assert.match(((await ready.json()) as { checks: { cache: string } }).checks.cache, /^failing/)
    assert.equal((await fetch(`${baseUrl}/health`)).status, 200, 'the process stays up')

    await server.start()
    const recoveredMs = await waitFor(
      'readiness',
      async () => (await fetch(`${baseUrl}/ready`)).status === 200,
    )
    const redis = new Redis(server.url)
    t.after(() => redis.disconnect())
    await waitFor('the cache filling again', async () => {
      await fetch(`${baseUrl}/api/items/${id}`)
      return (await redis.exists(`${name}:item:${id}`)) === 1
    })
    assert.deepEqual(unhandled, [])
    t.diagnostic(`ready again ${recoveredMs} ms after Redis came back`)
  })
})
