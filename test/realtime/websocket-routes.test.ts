import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestApp } from '../helpers/app.ts'
import { whenReachable } from '../helpers/services.ts'
import { closeCodeOf, openRawSocket, openSocket, readSse } from './clients.ts'

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

    test('rooms are apart; last_event_id replays the room after it; /sse/chat streams the room', async (t) => {
      const { baseUrl, wsUrl } = await appFor(t, mode)
      const ann = await openSocket(`${wsUrl}/ws/chat/ann?room=blue`)
      const joinedAt = await ann.nextJson()
      assert.deepEqual(pick(joinedAt), { type: 'join', client_id: 'ann' })
      assert.match(String(joinedAt.id), /^\d+-\d+$/)
      const lobby = await openSocket(`${wsUrl}/ws/chat/lobbyist`)
      assert.equal((await lobby.nextJson()).type, 'join')
      const stream = await readSse(`${baseUrl}/sse/chat?room=blue`)
      assert.equal(stream.status, 200)
      for (const text of ['one', 'two', 'three']) ann.send(text)
      const sent = [await ann.nextJson(), await ann.nextJson(), await ann.nextJson()]
      assert.deepEqual(
        sent.map((event) => event.text),
        ['one', 'two', 'three'],
      )
      const ids = sent.map((event) => String(event.id))
      const streamed = await stream.waitFor(3)
      assert.deepEqual(
        streamed.map((event) => [event.id, JSON.parse(event.data).text]),
        ids.map((id, index) => [id, sent[index]?.text]),
        'SSE events carry the same ids',
      )
      stream.abort()
      await sleep(50)
      assert.equal(lobby.inbox.length, 0, 'the lobby hears nothing of room blue')

      // Back after 'one': first 'two' and 'three' from the history, then live events.
      const back = await openSocket(`${wsUrl}/ws/chat/ann2?room=blue&last_event_id=${ids[0]}`)
      const replayed = [await back.nextJson(), await back.nextJson(), await back.nextJson()]
      assert.deepEqual(
        replayed.map((event) => [event.id, event.type, event.text]),
        [
          [ids[1], 'message', 'two'],
          [ids[2], 'message', 'three'],
          [replayed[2]?.id, 'join', undefined],
        ],
      )
      const resumed = await readSse(`${baseUrl}/sse/chat?room=blue`, {
        'last-event-id': ids[1] ?? '',
      })
      const fromHistory = await resumed.waitFor(2)
      assert.deepEqual(
        fromHistory.slice(0, 2).map((event) => event.id),
        [ids[2], replayed[2]?.id],
      )
      resumed.abort()
      for (const socket of [ann, lobby, back]) socket.close()
    })
  })
}

test('/ws/chat and /sse/chat refuse a bad room or last_event_id with 422', async (t) => {
  const { baseUrl } = await appFor(t, 'embedded')
  const port = Number(new URL(baseUrl).port)
  for (const query of [
    'room=a%20b',
    `room=${'r'.repeat(65)}`,
    'last_event_id=12',
    'last_event_id=x-1',
  ]) {
    await assert.rejects(
      openRawSocket(port, `/ws/chat/ok?${query}`),
      /upgrade refused: HTTP\/1\.1 422/,
      query,
    )
  }
  const response = await fetch(`${baseUrl}/sse/chat?room=%3Cb%3E`)
  assert.equal(response.status, 422)
  await response.body?.cancel()
})

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
  const { at: _at, id: _id, ...rest } = event
  return rest
}
