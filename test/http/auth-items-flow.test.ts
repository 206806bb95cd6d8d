import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildTestApp } from '../helpers/app.ts'
import { createTestDatabase, DIALECTS } from '../helpers/db.ts'
import { whenReachable } from '../helpers/services.ts'

interface Json {
  status: number
  body: Record<string, unknown>
}

function client(baseUrl: string) {
  return async function call(
    method: string,
    path: string,
    options: { token?: string; body?: unknown } = {},
  ): Promise<Json> {
    const headers: Record<string, string> = {}
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : {} }
  }
}

for (const dialect of DIALECTS) {
  describe(`auth and items over real HTTP on ${dialect}`, async () => {
    const service = dialect === 'sqlite' ? { skip: false as const } : await whenReachable(dialect)

    test(
      'register, login, create, get, list, update, forbidden update, delete, 404, logout, reuse 401',
      service,
      async (t) => {
        const databaseUrl = await createTestDatabase(t, dialect)
        const { baseUrl } = await buildTestApp(t, { DATABASE_URL: databaseUrl, BCRYPT_COST: '4' })
        const call = client(baseUrl)

        const registered = await call('POST', '/api/auth/register', {
          body: { username: 'alice', password: 'correct horse' },
        })
        assert.equal(registered.status, 201, JSON.stringify(registered.body))
        assert.equal(registered.body.username, 'alice')
        assert.match(String(registered.body.id), /^\d+$/)
        assert.equal('password_hash' in registered.body, false)

        const taken = await call('POST', '/api/auth/register', {
          body: { username: 'alice', password: 'another one' },
        })
        assert.equal(taken.status, 409)

        const login = await call('POST', '/api/auth/login', {
          body: { username: 'alice', password: 'correct horse' },
        })
        assert.equal(login.status, 200)
        assert.equal(login.body.token_type, 'bearer')
        const token = String(login.body.access_token)

        const me = await call('GET', '/api/users/me', { token })
        assert.equal(me.status, 200)
        assert.deepEqual(me.body, registered.body)

        const created = await call('POST', '/api/items', {
          token,
          body: {
            name: 'Lamp',
            price: 19.5,
            stock: 3,
            description: 'bright',
            id: '1',
            creator_id: '999',
          },
        })
        assert.equal(created.status, 201, JSON.stringify(created.body))
        const id = String(created.body.id)
        assert.notEqual(id, '1', 'a client cannot choose the id')
        assert.equal(
          created.body.creator_id,
          registered.body.id,
          'a client cannot choose the creator',
        )
        assert.equal(created.body.price, 19.5)

        const fetched = await call('GET', `/api/items/${id}`)
        assert.equal(fetched.status, 200)
        assert.deepEqual(fetched.body, created.body)

        const page = await call('GET', '/api/items?page=1&limit=10')
        assert.equal(page.status, 200)
        assert.equal(page.body.total, 1)
        assert.deepEqual(page.body.items, [created.body])

        const updated = await call('PATCH', `/api/items/${id}`, {
          token,
          body: { price: 25, stock: 7 },
        })
        assert.equal(updated.status, 200)
        assert.equal(updated.body.price, 25)
        assert.equal(updated.body.name, 'Lamp')
        assert.notEqual(updated.body.updated_at, null)
        const refetched = await call('GET', `/api/items/${id}`)
        assert.equal(refetched.body.price, 25, 'the update invalidated the cached copy')

        await call('POST', '/api/auth/register', {
          body: { username: 'mallory', password: 'not-alice-pw' },
        })
        const other = await call('POST', '/api/auth/login', {
          body: { username: 'mallory', password: 'not-alice-pw' },
        })
        const otherToken = String(other.body.access_token)
        const forbidden = await call('PATCH', `/api/items/${id}`, {
          token: otherToken,
          body: { price: 1 },
        })
        assert.equal(forbidden.status, 403)
        assert.equal(forbidden.body.code, 'ITEMS_FORBIDDEN')
        const forbiddenDelete = await call('DELETE', `/api/items/${id}`, { token: otherToken })
        assert.equal(forbiddenDelete.status, 403)

        const deleted = await call('DELETE', `/api/items/${id}`, { token })
        assert.equal(deleted.status, 204)
        const gone = await call('GET', `/api/items/${id}`)
        assert.equal(gone.status, 404)
        assert.deepEqual(gone.body, { detail: 'Item not found', code: 'ITEMS_NOT_FOUND' })
        const emptyPage = await call('GET', '/api/items')
        assert.equal(emptyPage.body.total, 0)

        const logout = await call('POST', '/api/auth/logout', { token })
        assert.equal(logout.status, 204)
        const reuse = await call('GET', '/api/users/me', { token })
        assert.equal(reuse.status, 401)
        assert.equal(
          (await call('GET', '/api/users/me', { token: otherToken })).status,
          200,
          'other sessions live on',
        )
      },
    )
  })
}

describe('auth rules (embedded)', () => {
  test('login answers 401 with one message for an unknown user and a wrong password', async (t) => {
    const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
    const call = client(baseUrl)
    await call('POST', '/api/auth/register', {
      body: { username: 'bob', password: 'bob-password' },
    })
    const unknown = await call('POST', '/api/auth/login', {
      body: { username: 'nobody', password: 'bob-password' },
    })
    const wrong = await call('POST', '/api/auth/login', {
      body: { username: 'bob', password: 'wrong-password' },
    })
    assert.equal(unknown.status, 401)
    assert.deepEqual(unknown, wrong)
  })

  test('password guessing past the login limit gets 429 while other routes still answer', async (t) => {
    const { baseUrl } = await buildTestApp(t, {
      BCRYPT_COST: '4',
      RATE_LIMIT_ROUTES: 'POST /api/auth/login=5',
    })
    const call = client(baseUrl)
    const statuses = []
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (
          await call('POST', '/api/auth/login', {
            body: { username: 'victim', password: `guess-${i}` },
          })
        ).status,
      )
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429])
    assert.equal((await call('GET', '/api/items')).status, 200)
  })

  test('login accepts the OAuth2 password form that Swagger UI sends', async (t) => {
    const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
    await client(baseUrl)('POST', '/api/auth/register', {
      body: { username: 'carol', password: 'carol-password' },
    })
    const response = await fetch(`${baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'carol',
        password: 'carol-password',
      }),
    })
    assert.equal(response.status, 200)
    assert.equal(((await response.json()) as { token_type: string }).token_type, 'bearer')
  })

  test('passwords shorter than 8 or longer than 72 bytes get 422 saying why', async (t) => {
    const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
    const call = client(baseUrl)
    const short = await call('POST', '/api/auth/register', {
      body: { username: 'dave', password: 'short' },
    })
    assert.equal(short.status, 422)
    assert.deepEqual((short.body.detail as Array<{ loc: unknown }>)[0]?.loc, ['body', 'password'])
    // 30 three-byte characters: 30 characters but 90 bytes, past bcrypt's 72-byte limit.
    const long = await call('POST', '/api/auth/register', {
      body: { username: 'dave', password: '€'.repeat(30) },
    })
    assert.equal(long.status, 422)
    assert.match(JSON.stringify(long.body.detail), /72 bytes/)
  })

  test('logout-all ends every session of the user', async (t) => {
    const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
    const call = client(baseUrl)
    await call('POST', '/api/auth/register', {
      body: { username: 'erin', password: 'erin-password' },
    })
    const tokens = []
    for (let i = 0; i < 3; i++) {
      tokens.push(
        String(
          (
            await call('POST', '/api/auth/login', {
              body: { username: 'erin', password: 'erin-password' },
            })
          ).body.access_token,
        ),
      )
    }
    assert.equal((await call('POST', '/api/auth/logout-all', { token: tokens[0] })).status, 204)
    for (const token of tokens)
      assert.equal((await call('GET', '/api/users/me', { token })).status, 401)
  })

  test('item input is validated: limit 1..100, price > 0, name 1..255, unknown id 404', async (t) => {
    const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
    const call = client(baseUrl)
    assert.equal((await call('GET', '/api/items?limit=0')).status, 422)
    assert.equal((await call('GET', '/api/items?limit=101')).status, 422)
    assert.equal((await call('GET', '/api/items?page=0')).status, 422)
    assert.equal((await call('GET', '/api/items/abc')).status, 422)
    assert.equal((await call('GET', '/api/items/123456789')).status, 404)
    await call('POST', '/api/auth/register', {
      body: { username: 'frank', password: 'frank-password' },
    })
    const token = String(
      (
        await call('POST', '/api/auth/login', {
          body: { username: 'frank', password: 'frank-password' },
        })
      ).body.access_token,
    )
    for (const body of [
      { name: 'x', price: 0, stock: 1 },
      { name: '', price: 1, stock: 1 },
      { name: 'x', price: 1, stock: -1 },
      { name: 'x'.repeat(256), price: 1, stock: 1 },
    ]) {
      const response = await call('POST', '/api/items', { token, body })
      assert.equal(response.status, 422, JSON.stringify(body))
      assert.ok(Array.isArray(response.body.detail))
    }
    assert.equal(
      (await call('POST', '/api/items', { body: { name: 'x', price: 1, stock: 1 } })).status,
      401,
    )
  })

  test('every route is in the OpenAPI document with the bearer scheme and error answers', async (t) => {
    const { baseUrl } = await buildTestApp(t)
    const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      paths: Record<
        string,
        Record<string, { security?: unknown; responses: Record<string, unknown> }>
      >
      components: { securitySchemes: Record<string, unknown> }
    }
    for (const path of [
      '/api/auth/register',
      '/api/auth/login',
      '/api/auth/logout',
      '/api/auth/logout-all',
      '/api/users/me',
      '/api/items',
      '/api/items/{id}',
    ]) {
      assert.ok(doc.paths[path], `${path} is documented`)
    }
    assert.ok(doc.components.securitySchemes.oauth2)
    assert.ok(doc.paths['/api/items']?.post?.security)
    assert.ok(doc.paths['/api/items/{id}']?.patch?.responses['403'])
    const getItem = doc.paths['/api/items/{id}']?.get as unknown as {
      parameters: Array<{ schema: { format?: string } }>
    }
    assert.equal(getItem.parameters[0]?.schema.format, 'int64')
  })
})
