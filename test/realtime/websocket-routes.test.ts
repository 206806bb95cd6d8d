import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestApp } from '../helpers/app.ts'
import { whenReachable } from '../helpers/services.ts'
import { closeCodeOf, openRawSocket, openSocket } from './clients.ts'

const redis = await whenReachable('redis')

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

async function appFor(
  t: TestContext,
  mode: 'embedded' | 'distributed',
  extra: Record<string, string> = {},
) {
  const overrides: Record<string, string> = { BCRYPT_COST: '4', ...NO_SHEDDING, ...extra }
  if (mode === 'distributed') {
    overrides.REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0'
    overrides.APP_NAME = `t-ws-${randomBytes(5).toString('hex')}`
  }
  const built = await buildTestApp(t, overrides)
  return { ...built, wsUrl: built.baseUrl.replace(/^http/, 'ws') }
}

async function signUp(baseUrl: string, username: string): Promise<string> {
  const body = JSON.stringify({ username, password: 'correct horse' })
  const headers = { 'content-type': 'application/json' }
  const registered = await fetch(`${baseUrl}/api/auth/register`, { method: 'POST', headers, body })
  assert.equal(registered.status, 201)
  const login = await fetch(`${baseUrl}/api/auth/login`, { method: 'POST', headers, body })
  const { access_token } = (await login.json()) as { access_token: string }
  return access_token
}

test('/ws/echo sends every message back, text as text and binary as binary', async (t) => {
  const { wsUrl } = await appFor(t, 'embedded')
  const socket = await openSocket(`${wsUrl}/ws/echo`)
  socket.send('hello')
  assert.equal(await socket.next(), 'hello')
  socket.send(new Uint8Array([0, 1, 2, 255]))
  assert.deepEqual(await socket.next(), Buffer.from([0, 1, 2, 255]))
  socket.send('ünïcödé ✓')
  assert.equal(await socket.next(), 'ünïcödé ✓')
  socket.close()
  assert.equal((await socket.closed).code, 1005)
})

test('/ws/json answers ping with pong, echoes other JSON, and answers malformed JSON with an error while staying open', async (t) => {
  const { wsUrl } = await appFor(t, 'embedded')
  const socket = await openSocket(`${wsUrl}/ws/json`)
  socket.send(JSON.stringify({ type: 'ping' }))
  assert.deepEqual(await socket.nextJson(), { type: 'pong' })
  socket.send('{"not json')
  const error = await socket.nextJson()
  assert.equal(error.type, 'error')
  assert.equal(error.code, 'WS_INVALID_JSON')
  assert.match(String(error.detail), /Invalid JSON/)
  socket.send(new Uint8Array([1, 2]))
  assert.equal((await socket.nextJson()).code, 'WS_BINARY_UNSUPPORTED')
  socket.send(JSON.stringify({ type: 'greeting', words: ['a', 'b'] }))
  assert.deepEqual(await socket.nextJson(), {
    type: 'echo',
    data: { type: 'greeting', words: ['a', 'b'] },
  })
  socket.send('[1, 2]')
  assert.deepEqual(await socket.nextJson(), { type: 'echo', data: [1, 2] })
  socket.send(JSON.stringify({ type: 'ping' }))
  assert.deepEqual(await socket.nextJson(), { type: 'pong' }, 'still open after the errors')
  assert.equal(socket.isClosed, false)
  socket.close()
})

for (const mode of ['embedded', 'distributed'] as const) {
  describe(`/ws/chat in ${mode} mode`, mode === 'distributed' ? redis : {}, () => {
    test('join, message and leave reach every chat client', async (t) => {
      const { wsUrl } = await appFor(t, mode)
      const alice = await openSocket(`${wsUrl}/ws/chat/alice`)
      assert.deepEqual(pick(await alice.nextJson()), { type: 'join', client_id: 'alice' })
      const bob = await openSocket(`${wsUrl}/ws/chat/bob`)
      assert.deepEqual(pick(await bob.nextJson()), { type: 'join', client_id: 'bob' })
      assert.deepEqual(pick(await alice.nextJson()), { type: 'join', client_id: 'bob' })

      alice.send('hello, "bob" <3')
      for (const socket of [alice, bob]) {
        const message = await socket.nextJson()
        assert.deepEqual(pick(message), {
          type: 'message',
          client_id: 'alice',
          text: 'hello, "bob" <3',
        })
        assert.match(String(message.at), /^\d{4}-\d\d-\d\dT/)
      }

      bob.close()
      await bob.closed
      assert.deepEqual(pick(await alice.nextJson()), { type: 'leave', client_id: 'bob' })
      await sleep(50)
      assert.equal(bob.inbox.length, 0, 'a closed client receives nothing more')
      alice.close()
    })
  })
}

test('/ws/chat drops what a client sends past 20 messages a second, telling it so', async (t) => {
  const { wsUrl } = await appFor(t, 'embedded')
  const sender = await openSocket(`${wsUrl}/ws/chat/sender`)
  const listener = await openSocket(`${wsUrl}/ws/chat/listener`)
  await sender.nextJson() // its join
  await sender.nextJson() // the listener's join
  await listener.nextJson()
  for (let index = 0; index < 30; index++) sender.send(`m${index}`)
  const received: string[] = []
  while (received.length < 20) {
    const event = await listener.nextJson()
    if (event.type === 'message') received.push(String(event.text))
  }
  assert.deepEqual(
    received,
    Array.from({ length: 20 }, (_, index) => `m${index}`),
  )
  await sleep(100)
  assert.equal(listener.inbox.length, 0, 'nothing past the limit was broadcast')
  const refusals = sender.inbox.filter((message) => String(message).includes('CHAT_RATE_LIMITED'))
  assert.equal(refusals.length, 10)
})

test('/ws/chat refuses a client id outside letters, digits, - and _ with 422, without upgrading', async (t) => {
  const { baseUrl, wsUrl } = await appFor(t, 'embedded')
  const port = Number(new URL(baseUrl).port)
  for (const bad of ['bad%20id', 'x'.repeat(65), '%3Cscript%3E']) {
    await assert.rejects(openRawSocket(port, `/ws/chat/${bad}`), /upgrade refused: HTTP\/1\.1 422/)
  }
  await assert.rejects(openSocket(`${wsUrl}/ws/chat/bad%20id`))
})

describe('/ws/authenticated', () => {
  test('closes with 1008 when the token is missing or invalid', async (t) => {
    const { wsUrl } = await appFor(t, 'embedded')
    assert.deepEqual(await closeCodeOf(`${wsUrl}/ws/authenticated`), {
      code: 1008,
      reason: 'missing token',
    })
    assert.deepEqual(await closeCodeOf(`${wsUrl}/ws/authenticated?token=`), {
      code: 1008,
      reason: 'missing token',
    })
    assert.deepEqual(await closeCodeOf(`${wsUrl}/ws/authenticated?token=not.a.jwt`), {
      code: 1008,
      reason: 'invalid token',
    })
  })

  test('welcomes a valid token with the user id and echoes as that user; a revoked token gets 1008', async (t) => {
    const { baseUrl, wsUrl } = await appFor(t, 'embedded')
    const token = await signUp(baseUrl, 'carol')
    const me = (await (
      await fetch(`${baseUrl}/api/users/me`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { id: string }

    const socket = await openSocket(`${wsUrl}/ws/authenticated?token=${encodeURIComponent(token)}`)
    assert.deepEqual(await socket.nextJson(), { type: 'welcome', user_id: me.id })
    socket.send('hi')
    assert.deepEqual(await socket.nextJson(), { type: 'echo', user_id: me.id, text: 'hi' })
    socket.close()

    const logout = await fetch(`${baseUrl}/api/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(logout.status, 204)
    assert.deepEqual(
      await closeCodeOf(`${wsUrl}/ws/authenticated?token=${encodeURIComponent(token)}`),
      { code: 1008, reason: 'invalid token' },
    )
  })
})

test('an unknown WebSocket path is closed at once', async (t) => {
  // The request-lifecycle handler timer stays armed for a WebSocket request outside the
  // realtime routes (it never completes as HTTP) and would hold this process open for 30 s.
  const { wsUrl } = await appFor(t, 'embedded', { HTTP_HANDLER_TIMEOUT_MS: '0' })
  // @fastify/websocket accepts the upgrade on any route and closes at once where no WebSocket
  // handler is: the socket is not left open.
  const socket = await openSocket(`${wsUrl}/ws/nowhere`)
  assert.equal((await socket.closed).code, 1005)
})

/** The fields of a chat event that do not change from run to run. */
function pick(event: Record<string, unknown>) {
  const { at: _at, ...rest } = event
  return rest
}
