import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify from 'fastify'
import pino from 'pino'
import { createContainer } from '../../src/container/index.ts'
import { registerRealtime } from '../../src/http/realtime/realtime-routes.ts'
import { createSseStreams } from '../../src/http/realtime/sse.ts'
import type { WebSocketLimits } from '../../src/http/realtime/websocket-peers.ts'
import type { App } from '../../src/http/server.ts'
import { testConfig } from '../helpers/app.ts'
import { eventually, openRawSocket, openSocket, type RawSocket, readSse } from './clients.ts'

/** The realtime routes alone, with small limits and a log the test reads. */
async function realtimeApp(t: TestContext, limits: Partial<WebSocketLimits>) {
  const logs: Array<{ msg: string } & Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) })
  const container = await createContainer(testConfig())
  const app = Fastify({ loggerInstance: logger }).withTypeProvider<TypeBoxTypeProvider>()
  await registerRealtime(app as unknown as App, {
    pubsub: container.pubsub,
    auth: container.services.auth,
    sse: createSseStreams({ pubsub: container.pubsub }),
    limits,
  })
  app.get('/health', async () => ({ status: 'ok' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    await container.close()
  })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  const baseUrl = `http://127.0.0.1:${address.port}`
  return { app, port: address.port, baseUrl, wsUrl: baseUrl.replace(/^http/, 'ws'), logs }
}

/** The server is still up: a fresh request answers and an open socket still echoes. */
async function assertStillServing(baseUrl: string, echo: Awaited<ReturnType<typeof openSocket>>) {
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200)
  echo.send('still there?')
  assert.equal(await echo.next(), 'still there?')
  assert.equal(echo.isClosed, false)
}

async function closedWith(raw: RawSocket): Promise<number | undefined> {
  await Promise.race([raw.ended, sleep(3000)])
  assert.ok(raw.isEnded, 'the server ended the connection')
  return raw.closeCode()
}

test('an oversized message closes that socket with 1009; the others and the server carry on', async (t) => {
  const { baseUrl, wsUrl, port, logs } = await realtimeApp(t, { maxPayloadBytes: 1024 })
  const bystander = await openSocket(`${wsUrl}/ws/echo`)

  const big = await openSocket(`${wsUrl}/ws/echo`)
  big.send('x'.repeat(1024))
  assert.equal((await big.next()).length, 1024, 'a message at the limit is fine')
  big.send('x'.repeat(1025))
  assert.equal((await big.closed).code, 1009)

  // A header announcing 100 MB is refused at once, before any of it is sent.
  const raw = await openRawSocket(port, '/ws/json')
  raw.socket.write(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x06, 0x40, 0, 0]))
  assert.equal(await closedWith(raw), 1009)

  await assertStillServing(baseUrl, bystander)
  assert.ok(logs.some((line) => line.msg === 'websocket protocol error: socket closed'))
})

test('malformed frames close that one socket with 1002 or 1007; the server stays up', async (t) => {
  const { baseUrl, wsUrl, port } = await realtimeApp(t, {})
  const bystander = await openSocket(`${wsUrl}/ws/echo`)
  const cases: Array<{ name: string; bytes: (raw: RawSocket) => void; code: number }> = [
    {
      name: 'an unmasked client frame',
      bytes: (raw) => raw.sendFrame(0x1, Buffer.from('hello'), { isMasked: false }),
      code: 1002,
    },
    {
      name: 'a reserved opcode',
      bytes: (raw) => raw.sendFrame(0x3, Buffer.from('?')),
      code: 1002,
    },
    {
      name: 'a text frame that is not UTF-8',
      bytes: (raw) => raw.sendFrame(0x1, Buffer.from([0xc3, 0x28, 0xff])),
      code: 1007,
    },
    {
      name: 'reserved bits set',
      bytes: (raw) => raw.socket.write(Buffer.from([0xf1, 0x80, 1, 2, 3, 4])),
      code: 1002,
    },
    {
      name: 'a fragmented control frame',
      bytes: (raw) => raw.socket.write(Buffer.from([0x09, 0x80, 1, 2, 3, 4])),
      code: 1002,
    },
    {
      name: 'raw garbage',
      bytes: (raw) => raw.socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')),
      code: 1002,
    },
  ]
  for (const { name, bytes, code } of cases) {
    const raw = await openRawSocket(port, '/ws/echo')
    bytes(raw)
    assert.equal(await closedWith(raw), code, name)
  }
  await assertStillServing(baseUrl, bystander)
})

test('a peer that stops answering pings is cut off; one that answers is kept', async (t) => {
  const { baseUrl, wsUrl, port, logs } = await realtimeApp(t, { heartbeatIntervalMs: 100 })
  const alive = await openSocket(`${wsUrl}/ws/echo`)
  // The raw client reads everything and answers nothing, as a peer that vanished would.
  const dead = await openRawSocket(port, '/ws/echo')
  await Promise.race([dead.ended, sleep(3000)])
  assert.ok(dead.isEnded, 'the dead peer was cut off')
  assert.ok(
    dead.frames.some((frame) => frame.opcode === 0x9),
    'it was pinged first',
  )
  assert.ok(logs.some((line) => line.msg === 'websocket peer missed its ping: cut off'))
  await sleep(300)
  await assertStillServing(baseUrl, alive)
})

test('a client that stops reading is cut off, and logged, once its queue passes the bound', async (t) => {
  const maxBufferedBytes = 256 * 1024
  const { baseUrl, wsUrl, port, logs } = await realtimeApp(t, {
    maxBufferedBytes,
    maxPayloadBytes: 64 * 1024,
  })
  const bystander = await openSocket(`${wsUrl}/ws/echo`)
  const slow = await openRawSocket(port, '/ws/echo')
  slow.socket.pause()
  const payload = Buffer.alloc(60 * 1024, 'a')
  const isCutOff = () =>
    logs.some((line) => line.msg === 'websocket peer reads too slowly: cut off')
  // Every message comes back as an echo the client never reads; kernel buffers fill first, then
  // the server's queue. Bounded: 500 messages are 30 MB.
  for (let sent = 0; sent < 500 && !isCutOff() && !slow.isEnded; sent++) {
    if (!slow.sendFrame(0x2, payload)) {
      // once() rejects on the reset that follows the cut-off: that is the outcome awaited.
      const drained = once(slow.socket, 'drain').catch(() => undefined)
      await Promise.race([drained, slow.ended, sleep(200)])
    }
  }
  await eventually(isCutOff, 'the slow reader to be cut off')
  const line = logs.find((entry) => entry.msg === 'websocket peer reads too slowly: cut off')
  assert.ok(Number(line?.bufferedBytes) > maxBufferedBytes)
  assert.ok(Number(line?.bufferedBytes) < maxBufferedBytes + 2 * payload.length)
  await assertStillServing(baseUrl, bystander)
})

test('shutdown closes WebSockets with 1001 and ends event streams at once', async (t) => {
  const { app, baseUrl, wsUrl } = await realtimeApp(t, {})
  const socket = await openSocket(`${wsUrl}/ws/echo`)
  const events = await readSse(`${baseUrl}/sse/heartbeat?interval_ms=100`)
  await events.waitFor(1)
  const startedMs = performance.now()
  await app.close()
  const tookMs = performance.now() - startedMs
  assert.equal((await socket.closed).code, 1001)
  await events.ended
  // Without the preClose hook this waits for the shutdown grace or a 30 s close timeout.
  assert.ok(tookMs < 3000, `app.close took ${Math.round(tookMs)} ms`)
})
