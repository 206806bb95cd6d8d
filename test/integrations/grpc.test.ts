import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Client, status } from '@grpc/grpc-js'
import {
  callUnary,
  createGrpcChannelPool,
  createHealthService,
  createUserClient,
  GrpcCallError,
  type GrpcChannelPool,
  outgoingMetadata,
  protoServices,
  startGrpcServer,
  USER_SERVICE_NAME,
  type User,
  unaryHandler,
} from '../../src/infra/grpc/index.ts'
import { createUsersGrpcService } from '../../src/modules/integrations/users-grpc-service.ts'
import { runWithContext } from '../../src/shared/request-context.ts'
import { freePort } from '../helpers/process.ts'
import { integrationApp, signUp } from './helpers.ts'

/** The real app with its gRPC server on a free loopback port, and a pool pointing at it. */
async function appWithGrpc(t: TestContext, env: Record<string, string> = {}) {
  const testApp = await integrationApp(t, { GRPC_PORT: '0', ...env })
  const server = testApp.container.integrations.grpcServer
  assert.ok(server, 'GRPC_PORT=0 starts the gRPC server')
  const pool = createGrpcChannelPool({
    targets: { users: `127.0.0.1:${server.port}` },
    appId: 'grpc-test',
    healthCheckIntervalMs: 0,
  })
  t.after(() => pool.close())
  return { ...testApp, port: server.port, pool }
}

function rejectsWith(promise: Promise<unknown>, code: status, errorCode?: string) {
  return assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GrpcCallError, String(error))
    assert.equal(error.codeName, status[code], error.message)
    if (errorCode) assert.equal(error.errorCode, errorCode)
    return true
  })
}

test("the UserClient calls servekit's own UserService over loopback: GetUser and paged ListUsers", async (t) => {
  const { baseUrl, pool } = await appWithGrpc(t)
  const alice = await signUp(baseUrl, 'alice')
  const others = []
  for (const name of ['bob', 'carol', 'dave', 'erin']) others.push(await signUp(baseUrl, name))
  const users = createUserClient(pool, { deadlineMs: 5000, token: () => alice.token })

  const got = await users.getUser(alice.id)
  assert.equal(got.id, alice.id)
  assert.equal(got.username, 'alice')
  assert.match(got.created_at, /^\d{4}-\d\d-\d\dT/)
  assert.equal('password_hash' in got, false)

  // Five users, pages of two: 2 + 2 + 1, each id once, in id order.
  const seen: User[] = []
  let pageToken = ''
  let pages = 0
  do {
    const page = await users.listUsers({ page_size: 2, page_token: pageToken })
    assert.ok(page.users.length <= 2)
    seen.push(...page.users)
    pageToken = page.next_page_token
    pages++
  } while (pageToken !== '' && pages < 10)
  assert.equal(pages, 3)
  assert.deepEqual(
    seen.map((user) => user.username),
    ['alice', 'bob', 'carol', 'dave', 'erin'],
  )
  assert.deepEqual(
    seen.map((user) => user.id),
    [...seen.map((user) => user.id)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
  )
  const all = await users.listUsers()
  assert.equal(all.users.length, 5)
  assert.equal(all.next_page_token, '')

  await rejectsWith(users.getUser('123'), status.NOT_FOUND, 'USERS_NOT_FOUND')
  await rejectsWith(users.getUser('not-a-number'), status.INVALID_ARGUMENT)
  await rejectsWith(users.listUsers({ page_token: 'bogus' }), status.INVALID_ARGUMENT)
  await rejectsWith(users.listUsers({ page_size: -1 }), status.INVALID_ARGUMENT)
})

test('the health service answers SERVING over loopback, and NOT_SERVING once the app drains', async (t) => {
  const { container, pool } = await appWithGrpc(t)
  assert.equal(await pool.checkHealth('users'), 'SERVING')
  assert.equal(await pool.checkHealth('users', { service: USER_SERVICE_NAME }), 'SERVING')
  assert.equal(await pool.checkHealth('users', { service: 'no.such.Service' }), 'SERVICE_UNKNOWN')
  assert.equal(pool.status().users?.state, 'READY')
  container.readiness.startDraining()
  assert.equal(await pool.checkHealth('users'), 'NOT_SERVING')
})

test('calls without a valid token or without an app id are UNAUTHENTICATED', async (t) => {
  const { baseUrl, pool } = await appWithGrpc(t, { GRPC_ALLOWED_APP_IDS: 'grpc-test,other' })
  const alice = await signUp(baseUrl, 'alice')
  const users = createUserClient(pool, { deadlineMs: 5000 })

  await rejectsWith(users.getUser(alice.id), status.UNAUTHENTICATED, 'GRPC_NOT_AUTHENTICATED')
  await rejectsWith(users.getUser(alice.id, { token: 'not.a.jwt' }), status.UNAUTHENTICATED)
  await rejectsWith(users.getUser(alice.id, { token: `${alice.token}x` }), status.UNAUTHENTICATED)

  const raw = pool.client<Client>('users', protoServices().UserService)
  const call = (metadata: ReturnType<typeof outgoingMetadata>) =>
    callUnary<User>(raw, 'GetUser', { id: alice.id }, metadata, { deadlineMs: 5000 })
  const noAppId = outgoingMetadata({ appId: 'grpc-test', token: alice.token })
  noAppId.remove('x-app-id')
  await rejectsWith(call(noAppId), status.UNAUTHENTICATED)
  await rejectsWith(
    call(outgoingMetadata({ appId: 'stranger', token: alice.token })),
    status.UNAUTHENTICATED,
  )
  assert.equal((await call(outgoingMetadata({ appId: 'other', token: alice.token }))).id, alice.id)

  // A revoked token stops working over gRPC too.
  const logout = await fetch(`${baseUrl}/api/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.token}` },
  })
  assert.equal(logout.status, 204)
  await rejectsWith(users.getUser(alice.id, { token: alice.token }), status.UNAUTHENTICATED)
})

test('a call past its deadline fails with DEADLINE_EXCEEDED, not a hang', async (t) => {
  const { baseUrl, pool } = await appWithGrpc(t)
  const alice = await signUp(baseUrl, 'alice')
  const users = createUserClient(pool, { deadlineMs: 5000, token: () => alice.token })
  await users.getUser(alice.id) // connected: the deadline below is not spent connecting
  await rejectsWith(users.getUser(alice.id, { deadlineMs: 1 }), status.DEADLINE_EXCEEDED)

  // A test-only server with the same service definition, whose handler would take 2 s; its
  // signal aborts when the caller's deadline passes, so the work stops there too.
  let handlerSawAbort = false
  const slow = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    shutdownTimeoutMs: 1000,
    services: [
      {
        definition: protoServices().UserService.service,
        implementation: {
          GetUser: unaryHandler<{ id: string }, User>('GetUser', async ({ id }, { signal }) => {
            try {
              await sleep(2000, undefined, { signal })
            } catch (error) {
              handlerSawAbort = true
              throw error
            }
            return { id, username: 'slow', created_at: new Date().toISOString() }
          }),
        },
      },
    ],
  })
  t.after(() => slow.close())
  const slowPool = createGrpcChannelPool({
    targets: { users: `127.0.0.1:${slow.port}` },
    appId: 'grpc-test',
    healthCheckIntervalMs: 0,
  })
  t.after(() => slowPool.close())
  const slowUsers = createUserClient(slowPool, { deadlineMs: 200, token: () => 'any' })

  const started = performance.now()
  await rejectsWith(slowUsers.getUser('1'), status.DEADLINE_EXCEEDED)
  const elapsedMs = performance.now() - started
  t.diagnostic(`DEADLINE_EXCEEDED after ${elapsedMs.toFixed(0)} ms for a 200 ms deadline`)
  assert.ok(elapsedMs >= 190 && elapsedMs < 1500, `took ${elapsedMs} ms`)
  for (let wait = 0; !handlerSawAbort && wait < 50; wait++) await sleep(20)
  assert.ok(handlerSawAbort, 'the server-side handler was told to stop')
})

test('the client sends the request id and trace as metadata', async (t) => {
  const seen: Array<Record<string, unknown>> = []
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    shutdownTimeoutMs: 1000,
    services: [
      createUsersGrpcService({
        guard: async (metadata) => {
          seen.push(metadata.getMap())
        },
        directory: {
          getById: async (id) => ({ id, username: 'x', created_at: '2026-01-01T00:00:00.000Z' }),
          listAfter: async () => [],
        },
      }),
    ],
  })
  t.after(() => server.close())
  const pool = createGrpcChannelPool({
    targets: { users: `127.0.0.1:${server.port}` },
    appId: 'tracer',
    healthCheckIntervalMs: 0,
  })
  t.after(() => pool.close())
  const users = createUserClient(pool, { deadlineMs: 2000 })
  const trace = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: '01' }
  await runWithContext({ requestId: 'req-42', trace }, () => users.getUser('7', { token: 't0k' }))
  assert.equal(seen.length, 1)
  assert.equal(seen[0]?.['x-request-id'], 'req-42')
  assert.equal(seen[0]?.traceparent, `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`)
  assert.equal(seen[0]?.['x-app-id'], 'tracer')
  assert.equal(seen[0]?.authorization, 'Bearer t0k')
})

test('the pool reconnects when its server comes back, and replaces a channel failing health checks', async (t) => {
  const serve = (port: number) =>
    startGrpcServer({
      host: '127.0.0.1',
      port,
      shutdownTimeoutMs: 500,
      services: [
        createHealthService({ statusOf: (service) => (service === '' ? 'SERVING' : undefined) }),
      ],
    })
  let server = await serve(0)
  const port = server.port
  const pool: GrpcChannelPool = createGrpcChannelPool({
    targets: { svc: `127.0.0.1:${port}` },
    appId: 'reconnect-test',
    healthCheckIntervalMs: 0,
    maxHealthFailures: 2,
  })
  t.after(async () => {
    await pool.close()
    await server.close()
  })
  assert.equal(await pool.checkHealth('svc'), 'SERVING')

  await server.close()
  assert.equal(await pool.checkHealth('svc', { deadlineMs: 300 }), 'UNREACHABLE')
  assert.equal(await pool.checkHealth('svc', { deadlineMs: 300 }), 'UNREACHABLE')
  assert.equal(pool.status().svc?.replaced, 1, 'two failures in a row replace the channel')

  server = await serve(port)
  let health = await pool.checkHealth('svc', { deadlineMs: 1000 })
  for (let attempt = 0; health !== 'SERVING' && attempt < 20; attempt++) {
    await sleep(100)
    health = await pool.checkHealth('svc', { deadlineMs: 1000 })
  }
  assert.equal(health, 'SERVING')
  assert.equal(pool.status().svc?.failures, 0)
})

test('an unknown target name is a 503-style AppError, and a closed pool refuses calls', async () => {
  const pool = createGrpcChannelPool({ targets: {}, appId: 'x', healthCheckIntervalMs: 0 })
  assert.throws(() => pool.client('nope', protoServices().Health), { code: 'GRPC_TARGET_UNKNOWN' })
  await pool.close()
  assert.throws(() => pool.client('nope', protoServices().Health), /closed/)
})

test('the container wires it all: its UserClient reaches its own server through GRPC_TARGETS', async (t) => {
  const port = await freePort()
  const { baseUrl, container } = await integrationApp(t, {
    GRPC_PORT: String(port),
    GRPC_TARGETS: `users=127.0.0.1:${port}`,
    GRPC_DEADLINE_MS: '3000',
  })
  assert.equal(container.integrations.grpcServer?.port, port)
  const alice = await signUp(baseUrl, 'alice')
  const user = await container.integrations.userClient.getUser(alice.id, { token: alice.token })
  assert.equal(user.username, 'alice')
  assert.equal(await container.integrations.grpc.checkHealth('users'), 'SERVING')

  const withoutTarget = await integrationApp(t)
  assert.equal(
    withoutTarget.container.integrations.grpcServer,
    undefined,
    'off unless GRPC_PORT is set',
  )
  await assert.rejects(withoutTarget.container.integrations.userClient.getUser('1'), {
    code: 'GRPC_TARGET_UNKNOWN',
  })
})

test('health Watch streams the status and its changes, and ends when the server closes', async (t) => {
  let isDraining = false
  const health = createHealthService({
    statusOf: (service) => (service === '' ? (isDraining ? 'NOT_SERVING' : 'SERVING') : undefined),
    watchIntervalMs: 20,
  })
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    shutdownTimeoutMs: 2000,
    services: [health],
    beforeClose: () => health.shutdown(),
  })
  t.after(() => server.close())
  const pool = createGrpcChannelPool({
    targets: { svc: `127.0.0.1:${server.port}` },
    appId: 'watch-test',
    healthCheckIntervalMs: 0,
  })
  t.after(() => pool.close())
  const client = pool.client('svc', protoServices().Health) as unknown as Client & {
    Watch(request: { service: string }): NodeJS.EventEmitter & { cancel(): void }
  }
  const stream = client.Watch({ service: '' })
  const statuses: string[] = []
  const ended = new Promise<void>((resolve) => {
    stream.on('data', (message: { status: string }) => statuses.push(message.status))
    stream.on('error', () => resolve())
    stream.on('end', () => resolve())
  })
  for (let wait = 0; statuses.length < 1 && wait < 100; wait++) await sleep(10)
  isDraining = true
  for (let wait = 0; statuses.length < 2 && wait < 100; wait++) await sleep(10)
  const started = performance.now()
  await server.close()
  await ended
  assert.deepEqual(statuses.slice(0, 2), ['SERVING', 'NOT_SERVING'])
  assert.ok(performance.now() - started < 1500, 'an open Watch stream does not hold the shutdown')
})
