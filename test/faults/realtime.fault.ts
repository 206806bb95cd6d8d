import { appendFileSync } from 'node:fs'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { chatChannel } from '../../src/http/realtime/websocket-handlers.ts'
import { createRedisPubSub } from '../../src/infra/pubsub/index.ts'
import { createRedis } from '../../src/infra/redis/index.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { freePort, type RunningProcess, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import { deleteRedisKeys, TEST_ENV, uniqueAppName } from '../orders/order-helpers.ts'
import { expectFigure } from './figures.ts'
import { type ClientTally, chatClient, PUBLISHER_ID, until } from './realtime-fault-helpers.ts'

/*
 * Item 13: 1,000 WebSocket and 1,000 SSE chat clients spread over three API processes
 * (distributed mode, one Redis), 10,000 events published on 20 rooms, and one process
 * SIGKILLed when half are out. Its clients reconnect to the others with the last id they saw
 * (last_event_id, Last-Event-ID) and must end with every event of their room, in order, once.
 */

const SERVERS = 3
const CLIENTS_PER_KIND = 1000
const ROOMS = 20
const EVENTS = 10_000
const EVENTS_PER_ROOM = EVENTS / ROOMS
/** Publishing pace: nominally 20 s (longer on a loaded machine); the kill lands at half. */
const BATCH = 40
const BATCH_EVERY_MS = 80
const KILLED = 1
/** Messages a room keeps for replay (the servers' PUBSUB_HISTORY_LIMIT default, set explicitly). */
const HISTORY_LIMIT = 1000
const CLIENTS = 2 * CLIENTS_PER_KIND
const FIGURE = {
  item: 13,
  name: `${CLIENTS_PER_KIND} WebSocket + ${CLIENTS_PER_KIND} SSE clients, 3 API processes, ${EVENTS} events on ${ROOMS} rooms, 1 process SIGKILLed midway`,
  pass: `${CLIENTS}/${CLIENTS} complete, 0 missing, 0 duplicate or out of order, every client of the killed process reconnected`,
}

test('realtime: 1,000 WebSocket and 1,000 SSE clients, 3 API processes, 10,000 events, one process SIGKILLed midway', {
  ...(await whenReachable('redis')),
  timeout: 360_000,
}, async (t) => {
  const appName = uniqueAppName('rt')
  t.after(() => deleteRedisKeys(appName))
  const databaseUrl = await createTestDatabase(t, 'sqlite')
  const env = {
    APP_ENV: 'test',
    APP_NAME: appName,
    DATABASE_URL: databaseUrl,
    REDIS_URL: serviceUrls.redis,
    LOG_LEVEL: 'warn',
    PUBSUB_HISTORY_LIMIT: String(HISTORY_LIMIT),
    ...TEST_ENV,
  }
  const ports = await Promise.all(Array.from({ length: SERVERS }, () => freePort()))
  const servers: RunningProcess[] = ports.map((port) =>
    runCli(['serve'], { ...env, PORT: String(port) }),
  )
  for (const server of servers) t.after(stopOnExit(server))
  const bases = ports.map((port) => `http://127.0.0.1:${port}`)
  progress('servers starting')
  await Promise.all(bases.map((base) => waitForOk(`${base}/ready`, 60_000)))
  progress('servers ready')

  // The test publishes as the servers do: the same pub/sub, channel and prefix.
  const silent = pino({ level: 'silent' })
  // A loaded test process may answer late: its commands wait rather than time out.
  const redis = await createRedis(serviceUrls.redis, silent, { commandTimeoutMs: 60_000 })
  const subscriber = await createRedis(serviceUrls.redis, silent)
  const pubsub = createRedisPubSub({
    publisher: redis.client,
    subscriber: subscriber.client,
    prefix: appName,
    // XADD trims to the publisher's limit: the same as the servers', or replay would be shorter.
    historyLimit: HISTORY_LIMIT,
  })
  t.after(async () => {
    await pubsub.close()
    await subscriber.close()
    await redis.close()
  })

  const clients: ClientTally[] = []
  t.after(() => {
    for (const client of clients) client.stop()
  })
  // Client i starts on server i mod 3, in room i mod 20: a third of each kind on each server.
  for (let index = 0; index < 2 * CLIENTS_PER_KIND; index++) {
    clients.push(
      chatClient({
        kind: index < CLIENTS_PER_KIND ? 'ws' : 'sse',
        clientId: `c${index}`,
        room: `room${index % ROOMS}`,
        servers: bases,
        first: index % SERVERS,
      }),
    )
    if (index % 100 === 99) await sleep(50)
  }
  progress('clients opened')
  const ticker = setInterval(() => {
    const ready = clients.filter((client) => client.isReady).length
    const received = clients.reduce((total, client) => total + client.received, 0)
    progress(`${ready} ready, ${received} events received`)
  }, 5000)
  t.after(() => clearInterval(ticker))
  const connected = await until(() => clients.every((client) => client.isReady), 60_000)
  if (!connected) {
    const waiting = clients.filter((client) => !client.isReady).length
    expectFigure(t, {
      ...FIGURE,
      measured: `${waiting} clients did not connect within 60 s`,
      ok: false,
    })
  }
  progress('clients connected')
  const onKilled = clients.filter((_client, index) => index % SERVERS === KILLED)

  const startedAt = Date.now()
  let killedAtEvent = -1
  for (let sent = 0; sent < EVENTS; ) {
    const batch: Array<Promise<string>> = []
    for (const end = Math.min(sent + BATCH, EVENTS); sent < end; sent++) {
      // Round robin over the rooms: event n is number n / ROOMS of room n mod ROOMS. One
      // connection sends the commands in order, so each room's ids follow its numbers.
      const text = String(Math.floor(sent / ROOMS))
      const data = JSON.stringify({ type: 'message', text, client_id: PUBLISHER_ID })
      batch.push(pubsub.publish(chatChannel(`room${sent % ROOMS}`), data))
    }
    await Promise.all(batch)
    if (killedAtEvent < 0 && sent >= EVENTS / 2) {
      servers[KILLED]?.child.kill('SIGKILL')
      killedAtEvent = sent
      progress(`SIGKILL at ${sent}`)
    }
    await sleep(BATCH_EVERY_MS)
  }
  const publishedMs = Date.now() - startedAt
  progress(`published in ${publishedMs} ms`)

  const complete = (client: ClientTally) => client.lastSeq === EVENTS_PER_ROOM - 1
  await until(() => clients.every(complete), 90_000, 250)
  const drainedMs = Date.now() - startedAt

  const done = clients.filter(
    (client) =>
      complete(client) &&
      client.received === EVENTS_PER_ROOM &&
      client.missing === 0 &&
      client.duplicates === 0,
  ).length
  const sum = (pick: (client: ClientTally) => number) =>
    clients.reduce((total, client) => total + pick(client), 0)
  const missing = sum((client) => client.missing + (EVENTS_PER_ROOM - 1 - client.lastSeq))
  const duplicates = sum((client) => client.duplicates)
  const reconnected = onKilled.filter((client) => client.reconnects > 0).length
  const byKind = (kind: 'ws' | 'sse') =>
    clients.filter((client) => client.kind === kind && complete(client)).length
  t.diagnostic(
    `published ${EVENTS} in ${publishedMs} ms, SIGKILL after ${killedAtEvent}; every client ` +
      `complete ${drainedMs} ms after the start; complete ws ${byKind('ws')}, sse ` +
      `${byKind('sse')}; ${reconnected}/${onKilled.length} clients of the killed process reconnected`,
  )
  const gapped = clients
    .map((client, index) => ({ client, index }))
    .filter(({ client }) => client.missing > 0)
  if (gapped.length > 0) {
    const where = gapped.map(
      ({ client, index }) =>
        `${client.kind}@${index % SERVERS}/${client.room}:${client.missing}(${client.reconnects})`,
    )
    t.diagnostic(
      `clients with gaps (kind@first server/room:missing(reconnects)): ${where.join(' ')}`,
    )
  }
  // What the servers warned about (cut-off readers, Redis trouble), by message.
  const warnings = new Map<string, number>()
  for (const server of servers) {
    for (const match of server.output().matchAll(/"msg":"([^"]*)"/g)) {
      const message = match[1] as string
      warnings.set(message, (warnings.get(message) ?? 0) + 1)
    }
  }
  if (warnings.size > 0)
    t.diagnostic(`server log: ${[...warnings].map(([m, n]) => `${n}× ${m}`).join('; ')}`)
  expectFigure(t, {
    ...FIGURE,
    measured:
      `${done}/${clients.length} clients got all ${EVENTS_PER_ROOM} events of their room in order; ` +
      `${missing} missing, ${duplicates} duplicate or out of order; ` +
      `${reconnected}/${onKilled.length} clients of the killed process reconnected`,
    ok:
      done === clients.length &&
      missing === 0 &&
      duplicates === 0 &&
      reconnected === onKilled.length,
  })

  for (const client of clients) client.stop()
  for (const [index, server] of servers.entries()) {
    if (index === KILLED) continue
    server.child.kill('SIGTERM')
    await server.exited
  }
})

const began = Date.now()
function progress(what: string) {
  if (process.env.FAULTS_PROGRESS)
    appendFileSync(process.env.FAULTS_PROGRESS, `${Date.now() - began} ms: ${what}\n`)
}
