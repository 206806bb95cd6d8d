import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildTestApp } from '../../../test/helpers/app.ts'

async function signedIn(t: Parameters<typeof buildTestApp>[0]) {
  const built = await buildTestApp(t)
  const credentials = { username: 'alice', password: 'password123' }
  await built.app.inject({ method: 'POST', url: '/api/auth/register', payload: credentials })
  const login = await built.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: credentials,
  })
  return { ...built, authorization: `Bearer ${login.json().access_token}` }
}

test('a null description is stored as null on create and update, not coerced to ""', async (t) => {
  const { app, authorization } = await signedIn(t)
  const created = await app.inject({
    method: 'POST',
    url: '/api/items',
    headers: { authorization },
    payload: { name: 'Lamp', price: 12.5, stock: 3, description: null },
  })
  assert.equal(created.statusCode, 201)
  assert.equal(created.json().description, null)
  const id = created.json().id as string
  assert.equal((await app.inject(`/api/items/${id}`)).json().description, null)

  const described = await app.inject({
    method: 'PATCH',
    url: `/api/items/${id}`,
    headers: { authorization },
    payload: { description: 'A lamp' },
  })
  assert.equal(described.json().description, 'A lamp')
  const cleared = await app.inject({
    method: 'PATCH',
    url: `/api/items/${id}`,
    headers: { authorization },
    payload: { description: null },
  })
  assert.equal(cleared.statusCode, 200)
  assert.equal(cleared.json().description, null)
  assert.equal((await app.inject(`/api/items/${id}`)).json().description, null)
})

test('a description over 10,000 characters or of the wrong shape answers 422', async (t) => {
  const { app, authorization } = await signedIn(t)
  for (const description of ['x'.repeat(10_001), { text: 'x' }]) {
    const response = await app.inject({
      method: 'POST',
      url: '/api/items',
      headers: { authorization },
      payload: { name: 'Lamp', price: 1, stock: 1, description },
    })
    assert.equal(response.statusCode, 422)
    assert.deepEqual(response.json().detail[0].loc, ['body', 'description'])
  }
})
