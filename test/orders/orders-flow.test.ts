import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildTestApp } from '../helpers/app.ts'
import { client, createItem, signIn, TEST_ENV, waitFor } from './order-helpers.ts'

interface Order {
  id: string
  item_id: string
  quantity: number
  status: string
  reason?: string
  created_at: string
  updated_at: string
}

/** Embedded mode (SQLite, in-process tasks): serve runs the order jobs itself. */
describe('orders over real HTTP in embedded mode', () => {
  test('an order answers 202 pending at once; the job completes it and the stock (and the cached item) drops', async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const token = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, token, 5)
    // Read the item once so that its public JSON sits in the cache.
    assert.equal((await call<{ stock: number }>('GET', `/api/items/${itemId}`)).body.stock, 5)

    const placed = await call<Order>('POST', '/api/orders', {
      token,
      body: { item_id: itemId, quantity: 2 },
    })
    assert.equal(placed.status, 202, JSON.stringify(placed.body))
    assert.deepEqual(Object.keys(placed.body).sort(), ['id', 'item_id', 'quantity', 'status'])
    assert.match(placed.body.id, /^\d+$/)
    assert.equal(placed.body.item_id, itemId)
    assert.equal(placed.body.quantity, 2)
    assert.equal(placed.body.status, 'pending')

    const done = await waitFor('order completed', async () => {
      const got = await call<Order>('GET', `/api/orders/${placed.body.id}`, { token })
      assert.equal(got.status, 200)
      return got.body.status === 'pending' ? undefined : got.body
    })
    assert.equal(done.status, 'completed')
    assert.equal(done.reason, undefined)
    assert.match(done.created_at, /^\d{4}-\d\d-\d\dT.*Z$/)
    assert.ok(done.updated_at >= done.created_at)
    const item = await call<{ stock: number }>('GET', `/api/items/${itemId}`)
    assert.equal(item.body.stock, 3, 'the cached copy was invalidated')
  })

  test('an order for more than the stock is rejected with insufficient_stock; the stock stays', async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const token = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, token, 3)
    const placed = await call<Order>('POST', '/api/orders', {
      token,
      body: { item_id: itemId, quantity: 4 },
    })
    assert.equal(placed.status, 202)
    const settled = await waitFor('order settled', async () => {
      const got = await call<Order>('GET', `/api/orders/${placed.body.id}`, { token })
      return got.body.status === 'pending' ? undefined : got.body
    })
    assert.equal(settled.status, 'rejected')
    assert.equal(settled.reason, 'insufficient_stock')
    assert.equal((await call<{ stock: number }>('GET', `/api/items/${itemId}`)).body.stock, 3)
  })

  test('bad orders get clear 4xx answers: unknown or deleted item 404, quantity out of 1..1000 422, no token 401', async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const token = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, token, 3)

    const unknown = await call('POST', '/api/orders', {
      token,
      body: { item_id: '123456789', quantity: 1 },
    })
    assert.equal(unknown.status, 404)
    assert.deepEqual(unknown.body, {
      detail: 'The item to order does not exist',
      code: 'ORDERS_ITEM_NOT_FOUND',
    })
    for (const quantity of [0, 1001, 1.5, '2x']) {
      const bad = await call('POST', '/api/orders', { token, body: { item_id: itemId, quantity } })
      assert.equal(bad.status, 422, `quantity ${quantity}`)
      assert.ok(Array.isArray(bad.body.detail))
    }
    const badId = await call('POST', '/api/orders', { token, body: { item_id: 'x', quantity: 1 } })
    assert.equal(badId.status, 422)
    const badKey = await call('POST', '/api/orders', {
      token,
      body: { item_id: itemId, quantity: 1 },
      headers: { 'idempotency-key': 'x'.repeat(65) },
    })
    assert.equal(badKey.status, 422)
    const anonymous = await call('POST', '/api/orders', { body: { item_id: itemId, quantity: 1 } })
    assert.equal(anonymous.status, 401)
    assert.equal((await call('GET', '/api/orders/1')).status, 401)

    assert.equal((await call('DELETE', `/api/items/${itemId}`, { token })).status, 204)
    const deleted = await call('POST', '/api/orders', {
      token,
      body: { item_id: itemId, quantity: 1 },
    })
    assert.equal(deleted.status, 404)
  })

  test("another user's order answers 404, exactly as an unknown id does", async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const alice = await signIn(baseUrl)
    const bob = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, alice, 3)
    const placed = await call<Order>('POST', '/api/orders', {
      token: alice,
      body: { item_id: itemId, quantity: 1 },
    })
    const theirs = await call('GET', `/api/orders/${placed.body.id}`, { token: bob })
    const unknown = await call('GET', '/api/orders/987654321', { token: bob })
    assert.equal(theirs.status, 404)
    assert.deepEqual(theirs.body, unknown.body)
    assert.deepEqual(theirs.body, { detail: 'Order not found', code: 'ORDERS_NOT_FOUND' })
    const events = await fetch(`${baseUrl}/api/orders/${placed.body.id}/events`, {
      headers: { authorization: `Bearer ${bob}` },
    })
    assert.equal(events.status, 404)
    await events.body?.cancel()
    assert.equal((await call('GET', `/api/orders/${placed.body.id}`, { token: alice })).status, 200)
  })

  test('a repeated Idempotency-Key returns the first order and places nothing; a key is per user', async (t) => {
    const { baseUrl, container } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const alice = await signIn(baseUrl)
    const bob = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, alice, 100)
    const order = (token: string, quantity = 1, key = 'checkout-42') =>
      call<Order>('POST', '/api/orders', {
        token,
        body: { item_id: itemId, quantity },
        headers: { 'idempotency-key': key },
      })

    const first = await order(alice)
    assert.equal(first.status, 202)
    assert.equal(first.headers.get('idempotent-replayed'), null)
    await waitFor('first order settled', async () => {
      const got = await call<Order>('GET', `/api/orders/${first.body.id}`, { token: alice })
      return got.body.status === 'completed' ? true : undefined
    })
    const again = await order(alice)
    assert.equal(again.status, 202)
    assert.deepEqual(again.body, first.body, 'the same answer as the first time')
    assert.equal(again.headers.get('idempotent-replayed'), 'true')

    const changed = await order(alice, 2)
    assert.equal(changed.status, 409)
    assert.equal(
      (changed.body as unknown as { code: string }).code,
      'ORDERS_IDEMPOTENCY_KEY_REUSED',
    )

    // Ten retries at once: the unique index decides, every one gets the same order.
    const racing = await Promise.all(Array.from({ length: 10 }, () => order(alice, 1, 'race')))
    assert.ok(racing.every((answer) => answer.status === 202))
    assert.equal(new Set(racing.map((answer) => answer.body.id)).size, 1)

    const bobs = await order(bob)
    assert.equal(bobs.status, 202)
    assert.notEqual(bobs.body.id, first.body.id, "another user's key is another order")

    const rows = await container.db.db
      .selectFrom('orders')
      .select(['id', 'idempotency_key'])
      .execute()
    assert.equal(rows.length, 3, 'alice checkout-42, alice race, bob checkout-42')
    await waitFor('every order settled', async () => {
      const pending = await container.db.db
        .selectFrom('orders')
        .select('id')
        .where('status', '=', 'pending')
        .execute()
      return pending.length === 0 ? true : undefined
    })
    assert.equal((await call<{ stock: number }>('GET', `/api/items/${itemId}`)).body.stock, 97)
  })

  test('GET /api/orders/{id}/events streams the order going from pending to completed', async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const call = client(baseUrl)
    const token = await signIn(baseUrl)
    const itemId = await createItem(baseUrl, token, 1)
    const placed = await call<Order>('POST', '/api/orders', {
      token,
      body: { item_id: itemId, quantity: 1 },
    })
    const response = await fetch(`${baseUrl}/api/orders/${placed.body.id}/events`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let text = ''
    while (!text.includes('"completed"')) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    await reader.cancel()
    const events = [...text.matchAll(/^data: (.*)$/gm)].map(
      (match) => JSON.parse(match[1] as string) as { id: string; status: string },
    )
    assert.deepEqual(
      events.map((event) => event.status),
      ['pending', 'completed'],
    )
    assert.ok(events.every((event) => event.id === placed.body.id))
  })

  test('the OpenAPI document describes the order routes with their answers', async (t) => {
    const { baseUrl } = await buildTestApp(t, TEST_ENV)
    const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
    }
    assert.deepEqual(Object.keys(doc.paths['/api/orders']?.post?.responses ?? {}).sort(), [
      '202',
      '401',
      '404',
      '409',
      '422',
    ])
    assert.ok(doc.paths['/api/orders/{id}']?.get?.responses['200'])
    assert.ok(doc.paths['/api/orders/{id}/events']?.get?.responses['200'])
  })
})
