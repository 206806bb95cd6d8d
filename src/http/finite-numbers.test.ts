import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildTestApp } from '../../test/helpers/app.ts'
import { withFiniteNumbers } from './finite-numbers.ts'

test('a number that coercion makes infinite answers 422, in the query and in the body', async (t) => {
  const { app } = await buildTestApp(t, { BCRYPT_COST: '4' })
  for (const url of ['/api/items?page=1e999', `/api/items?limit=${'9'.repeat(400)}`]) {
    const response = await app.inject(url)
    assert.equal(response.statusCode, 422, url)
    assert.equal(response.json().detail[0].type, 'finite')
  }
  const credentials = { username: 'alice', password: 'password123' }
  await app.inject({ method: 'POST', url: '/api/auth/register', payload: credentials })
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: credentials })
  const authorization = `Bearer ${login.json().access_token}`
  for (const [field, value] of [
    ['price', '9'.repeat(400)],
    ['stock', '1e999'],
  ] as const) {
    const response = await app.inject({
      method: 'POST',
      url: '/api/items',
      headers: { authorization },
      payload: { name: 'Lamp', price: 1, stock: 1, [field]: value },
    })
    assert.equal(response.statusCode, 422, field)
    assert.deepEqual(response.json().detail[0].loc, ['body', field])
  }
  // Finite numbers sent as strings are still coerced, as before.
  const coerced = await app.inject({
    method: 'POST',
    url: '/api/items',
    headers: { authorization },
    payload: { name: 'Lamp', price: '2.5', stock: '3' },
  })
  assert.equal(coerced.statusCode, 201)
  assert.equal(coerced.json().stock, 3)
  const document = await app.inject('/openapi.json')
  assert.ok(!document.body.includes('"finite"'), 'the OpenAPI document is unchanged')
})

test('withFiniteNumbers marks number schemas at any depth and leaves the original alone', () => {
  const schema = {
    type: 'object',
    properties: {
      a: { type: 'integer' },
      b: { anyOf: [{ type: 'number' }, { type: 'null' }] },
      c: { type: 'array', items: { type: ['number', 'null'] } },
      d: { type: 'string' },
    },
  }
  const marked = withFiniteNumbers(schema) as typeof schema & Record<string, never>
  assert.deepEqual(marked.properties.a, { type: 'integer', finite: true })
  assert.deepEqual(marked.properties.b.anyOf[0], { type: 'number', finite: true })
  assert.deepEqual(marked.properties.c.items, { type: ['number', 'null'], finite: true })
  assert.deepEqual(marked.properties.d, { type: 'string' })
  assert.deepEqual(schema.properties.a, { type: 'integer' })
})
