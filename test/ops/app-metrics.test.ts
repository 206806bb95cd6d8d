import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildTestApp } from '../helpers/app.ts'

test('/metrics counts open WebSockets and settled orders by outcome', async (t) => {
  const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
  const metric = async (name: string) => {
    const text = await (await fetch(`${baseUrl}/metrics`)).text()
    return text.split('\n').find((line) => line.startsWith(name))
  }
  const post = async (path: string, body: unknown, token?: string) =>
    fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    })

  assert.equal(await metric('task_queue_depth '), 'task_queue_depth 0')
  assert.equal(await metric('websocket_connections '), 'websocket_connections 0')
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/ws/echo`)
  await new Promise((resolve, reject) => {
    socket.onopen = resolve
    socket.onerror = reject
  })
  assert.equal(await metric('websocket_connections '), 'websocket_connections 1')
  socket.close()

  const credentials = { username: 'buyer', password: 'buyer-password' }
  await post('/api/auth/register', credentials)
  const { access_token: token } = (await (await post('/api/auth/login', credentials)).json()) as {
    access_token: string
  }
  const item = (await (
    await post('/api/items', { name: 'Mug', price: 3, stock: 1 }, token)
  ).json()) as { id: string }
  for (const expected of ['completed', 'rejected']) {
    const placed = await post('/api/orders', { item_id: item.id, quantity: 1 }, token)
    assert.equal(placed.status, 202)
    const { id } = (await placed.json()) as { id: string }
    let status = 'pending'
    for (let i = 0; i < 200 && status === 'pending'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      const order = await fetch(`${baseUrl}/api/orders/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      status = ((await order.json()) as { status: string }).status
    }
    assert.equal(status, expected)
  }
  assert.equal(
    await metric('orders_settled_total{status="completed"}'),
    'orders_settled_total{status="completed"} 1',
  )
  assert.equal(
    await metric('orders_settled_total{status="rejected"}'),
    'orders_settled_total{status="rejected"} 1',
  )
})
