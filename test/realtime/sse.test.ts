import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect as connectTcp } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createSseStreams, formatSseEvent, type SseStreams } from '../../src/http/realtime/sse.ts'
import type { PubSub } from '../../src/infra/pubsub/index.ts'
import { createRedis } from '../../src/infra/redis/index.ts'
import { deleteKeysUnder } from '../../src/infra/redis/redis-testing.ts'
import { AppError } from '../../src/shared/errors.ts'
import { buildTestApp } from '../helpers/app.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import { eventually, getText, readSse } from './clients.ts'

const redis = await whenReachable('redis')

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

test('formatSseEvent writes id, event and one data line per line of the data', () => {
  assert.equal(
    formatSseEvent({ id: '1-0', event: 'status', data: 'a\nb\r\nc' }),
    'id: 1-0\nevent: status\ndata: a\ndata: b\ndata: c\n\n',
  )
  assert.equal(formatSseEvent({ data: '' }), 'data: \n\n')
  assert.throws(() => formatSseEvent({ id: '1\n2', data: 'x' }), RangeError)
  assert.throws(() => formatSseEvent({ event: 'a\rb', data: 'x' }), RangeError)
})

describe('GET /sse/heartbeat', () => {
  test('sends heartbeat events with increasing ids; Last-Event-ID resumes the count', async (t) => {
    const { baseUrl } = await buildTestApp(t, NO_SHEDDING)
    const stream = await readSse(`${baseUrl}/sse/heartbeat?interval_ms=100`)
    assert.equal(stream.status, 200)
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8')
    assert.match(stream.headers['cache-control'] ?? '', /no-cache/)
    const events = await stream.waitFor(3)
    stream.abort()
    assert.deepEqual(
      events.slice(0, 3).map((event) => [event.id, event.event]),
      [
        ['0', 'heartbeat'],
        ['1', 'heartbeat'],
        ['2', 'heartbeat'],
      ],
    )
    const data = JSON.parse(events[1]?.data ?? '{}') as { seq: number; time: string }
    assert.equal(data.seq, 1)
    assert.ok(Math.abs(Date.parse(data.time) - Date.now()) < 5000)

    const resumed = await readSse(`${baseUrl}/sse/heartbeat?interval_ms=100`, {
      'last-event-id': '41',
    })
    assert.equal((await resumed.waitFor(1))[0]?.id, '42')
    resumed.abort()
  })

  test('an interval outside 100..60000 ms is refused with 422', async (t) => {
    const { baseUrl } = await buildTestApp(t, NO_SHEDDING)
    for (const bad of ['50', '60001', 'soon']) {
      const response = await fetch(`${baseUrl}/sse/heartbeat?interval_ms=${bad}`)
      assert.equal(response.status, 422, bad)
    }
  })
})

/** Counts live subscriptions, to see that a closed client frees its own at once. */
function counting(pubsub: PubSub) {
  let active = 0
  const wrapped: PubSub = {
    ...pubsub,
    async subscribe(channel, handler) {
      const unsubscribe = await pubsub.subscribe(channel, handler)
      active += 1
      let isDone = false
      return () => {
        if (!isDone) active -= 1
        isDone = true
        unsubscribe()
      }
    },
  }
  return { pubsub: wrapped, active: () => active }
}

/** The app with a test route streaming `test:<name>` through the SSE helper. */
async function channelApp(t: TestContext, mode: 'embedded' | 'distributed') {
  const overrides: Record<string, string> = { ...NO_SHEDDING }
  const appName = `t-sse-${randomBytes(5).toString('hex')}`
  if (mode === 'distributed') {
    overrides.REDIS_URL = serviceUrls.redis
    overrides.APP_NAME = appName
    t.after(async () => {
      const connection = await createRedis(serviceUrls.redis, pino({ level: 'silent' }))
      await deleteKeysUnder(connection.client, appName)
      await connection.close()
    })
  }
  let sse: SseStreams | undefined
  const built = await buildTestApp(t, overrides, {
    beforeListen: (app) => {
      app.get('/test/channels/:name', async (request, reply) => {
        const { name } = request.params as { name: string }
        const { replay } = request.query as { replay?: string }
        if (!sse) throw new Error('not ready')
        return sse.streamChannel(request, reply, {
          channel: `test:${name}`,
          authorize: () => {
            if (name === 'secret') throw new AppError('not_found', 'TEST_NOT_FOUND', 'No such')
          },
          replay: replay === 'all' ? 'all' : 'none',
          event: 'update',
        })
      })
    },
  })
  const counted = counting(built.container.pubsub)
  sse = createSseStreams({ pubsub: counted.pubsub })
  const streams = sse
  return {
    ...built,
    pubsub: built.container.pubsub,
    active: counted.active,
    openStreams: () => streams.size,
  }
}

for (const mode of ['embedded', 'distributed'] as const) {
  describe(`the SSE channel stream in ${mode} mode`, mode === 'distributed' ? redis : {}, () => {
    test('a refused client gets the error answer and holds no subscription', async (t) => {
      const { baseUrl, active } = await channelApp(t, mode)
      const response = await fetch(`${baseUrl}/test/channels/secret`)
      assert.equal(response.status, 404)
      assert.deepEqual(await response.json(), { detail: 'No such', code: 'TEST_NOT_FOUND' })
      assert.equal(active(), 0)
    })

    test('without Last-Event-ID only what is published next arrives, with the message id', async (t) => {
      const { baseUrl, pubsub } = await channelApp(t, mode)
      await pubsub.publish('test:a', 'before')
      const stream = await readSse(`${baseUrl}/test/channels/a`)
      const id = await pubsub.publish('test:a', 'line one\nline two')
      assert.deepEqual(await stream.waitFor(1), [
        { id, event: 'update', data: 'line one\nline two' },
      ])
      stream.abort()
    })

    test('replay "all" sends the recorded history first, then live messages', async (t) => {
      const { baseUrl, pubsub } = await channelApp(t, mode)
      const first = await pubsub.publish('test:b', 'pending')
      const stream = await readSse(`${baseUrl}/test/channels/b?replay=all`)
      await stream.waitFor(1)
      const second = await pubsub.publish('test:b', 'completed')
      const events = await stream.waitFor(2)
      assert.deepEqual(
        events.map((event) => [event.id, event.data]),
        [
          [first, 'pending'],
          [second, 'completed'],
        ],
      )
      stream.abort()
    })

    test('Last-Event-ID replays what came after it, then goes on live', async (t) => {
      const { baseUrl, pubsub } = await channelApp(t, mode)
      const ids: string[] = []
      for (const data of ['m0', 'm1', 'm2', 'm3']) ids.push(await pubsub.publish('test:c', data))
      const stream = await readSse(`${baseUrl}/test/channels/c`, { 'last-event-id': ids[1] ?? '' })
      await stream.waitFor(2)
      await pubsub.publish('test:c', 'm4')
      const events = await stream.waitFor(3)
      assert.deepEqual(
        events.map((event) => event.data),
        ['m2', 'm3', 'm4'],
      )
      stream.abort()
    })

    test('messages published while the client connects arrive once each, in order', async (t) => {
      const { baseUrl, pubsub } = await channelApp(t, mode)
      const published: string[] = []
      let isPublishing = true
      const publishing = (async () => {
        for (let index = 0; index < 60 && isPublishing; index++) {
          published.push(await pubsub.publish('test:d', `n${index}`))
          await sleep(1)
        }
      })()
      await sleep(10)
      const stream = await readSse(`${baseUrl}/test/channels/d?replay=all`)
      await publishing
      isPublishing = false
      const events = await stream.waitFor(published.length)
      assert.deepEqual(
        events.map((event) => event.id),
        published,
      )
      stream.abort()
    })

    test('a client that goes away frees its subscription at once', async (t) => {
      const { baseUrl, active, openStreams } = await channelApp(t, mode)
      const streams = await Promise.all([1, 2, 3].map(() => readSse(`${baseUrl}/test/channels/e`)))
      assert.equal(active(), 3)
      assert.equal(openStreams(), 3)
      streams[0]?.abort()
      await eventually(() => active() === 2, 'the subscription to go', 1000)
      for (const stream of streams) stream.abort()
      await eventually(
        () => active() === 0 && openStreams() === 0,
        'every subscription to go',
        1000,
      )
    })
  })
}

describe('an SSE client that stops reading', () => {
  test('is cut off once its queue passes the bound; one that reads gets everything', async (t) => {
    const results: Array<{ sent: number; isCutOff: boolean }> = []
    const total = 20_000
    let flood: SseStreams | undefined
    const { baseUrl, container } = await buildTestApp(t, NO_SHEDDING, {
      beforeListen: (app) => {
        app.get('/test/flood', async (request, reply) => {
          if (!flood) throw new Error('not ready')
          const connection = flood.open(request, reply)
          let sent = 0
          // One 1 KiB event per turn of the event loop: a reader that reads keeps up.
          const tick = () => {
            if (!connection.isOpen || sent >= total) {
              results.push({ sent, isCutOff: !connection.isOpen && sent < total })
              connection.close()
              return
            }
            if (connection.send({ data: 'x'.repeat(1024) })) sent += 1
            setImmediate(tick)
          }
          tick()
          return reply
        })
      },
    })
    flood = createSseStreams({
      pubsub: container.pubsub,
      limits: { maxBufferedBytes: 64 * 1024 },
    })

    const reader = await getText(`${baseUrl}/test/flood`)
    assert.equal(reader.body.match(/^data: /gm)?.length, total)
    assert.deepEqual(results, [{ sent: total, isCutOff: false }])

    const { port } = new URL(baseUrl)
    const stalled = connectTcp({ host: '127.0.0.1', port: Number(port) }, () => {
      stalled.write('GET /test/flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n')
      stalled.pause()
    })
    stalled.on('error', () => {})
    t.after(() => stalled.destroy())
    await eventually(() => results.length === 2, 'the stalled client to be cut off', 10_000)
    assert.equal(results[1]?.isCutOff, true)
    assert.ok((results[1]?.sent ?? total) < total)
    assert.equal(flood.size, 0)
  })
})
