import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import pino from 'pino'
import { createRedis } from '../../src/infra/redis/index.ts'
import { deleteKeysUnder } from '../../src/infra/redis/redis-testing.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import { openSocket } from './clients.ts'

const redis = await whenReachable('redis')

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

test('with two server processes on one Redis, chat reaches the clients of both', {
  ...redis,
  timeout: 60_000,
}, async (t) => {
  const appName = `t-chat-${randomBytes(5).toString('hex')}`
  t.after(async () => {
    const connection = await createRedis(serviceUrls.redis, pino({ level: 'silent' }))
    await deleteKeysUnder(connection.client, appName)
    await connection.close()
  })
  const databaseUrl = await createTestDatabase(t, 'sqlite')
  const ports = [await freePort(), await freePort()]
  const servers = ports.map((port) =>
    runCli(['serve'], {
      APP_ENV: 'test',
      APP_NAME: appName,
      DATABASE_URL: databaseUrl,
      REDIS_URL: serviceUrls.redis,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...NO_SHEDDING,
    }),
  )
  for (const server of servers) t.after(stopOnExit(server))
  await Promise.all(ports.map((port) => waitForOk(`http://127.0.0.1:${port}/ready`, 20_000)))
  const [first, second] = ports.map((port) => `ws://127.0.0.1:${port}`)

  const alice = await openSocket(`${first}/ws/chat/alice`)
  assert.equal((await alice.nextJson()).type, 'join')
  const bob = await openSocket(`${second}/ws/chat/bob`)
  assert.deepEqual(fields(await bob.nextJson()), ['join', 'bob', undefined])
  assert.deepEqual(fields(await alice.nextJson()), ['join', 'bob', undefined])

  alice.send('hello from the first replica')
  assert.deepEqual(fields(await bob.nextJson()), [
    'message',
    'alice',
    'hello from the first replica',
  ])
  assert.deepEqual(fields(await alice.nextJson()), [
    'message',
    'alice',
    'hello from the first replica',
  ])

  bob.send('and back from the second')
  assert.deepEqual(fields(await alice.nextJson()), ['message', 'bob', 'and back from the second'])

  bob.close()
  assert.deepEqual(fields(await alice.nextJson()), ['leave', 'bob', undefined])
  alice.close()
  await alice.closed

  for (const server of servers) server.child.kill('SIGTERM')
  const codes = await Promise.all(servers.map((server) => server.exited))
  assert.deepEqual(codes, [0, 0], servers.map((server) => server.output()).join('\n'))
})

function fields(event: Record<string, unknown>) {
  return [event.type, event.client_id, event.text]
}
