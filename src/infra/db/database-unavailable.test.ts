import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import { sql } from 'kysely'
import pino from 'pino'
import {
  cleanupStack,
  type PrivateServer,
  startPrivateMariadb,
  startPrivatePostgres,
} from '../../../test/faults/private-servers.ts'
import { buildTestApp, testConfig } from '../../../test/helpers/app.ts'
import { createDatabase } from './database.ts'
import { isDatabaseUnavailable } from './errors.ts'

const withCode = (message: string, fields: Record<string, unknown>) =>
  Object.assign(new Error(message), fields)

test('isDatabaseUnavailable: refused, reset, pool timeouts, shutdowns, lost connections', () => {
  const outages = [
    withCode('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED' }),
    withCode('read ECONNRESET', { code: 'ECONNRESET' }),
    new AggregateError([withCode('x', { code: 'ECONNREFUSED' })], 'connect failed'),
    withCode('terminating connection due to administrator command', { code: '57P01' }),
    withCode('the database system is starting up', { code: '57P03' }),
    withCode('connection failure', { code: '08006' }),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Client has encountered a connection error and is not queryable'),
    withCode('Connection lost: The server closed the connection.', {
      code: 'PROTOCOL_CONNECTION_LOST',
    }),
    withCode('Server shutdown in progress', { code: 'ER_SERVER_SHUTDOWN', errno: 1053 }),
    withCode('Lost connection to server', { errno: 2013 }),
    new Error('query failed', {
      cause: withCode('connect ECONNREFUSED', { code: 'ECONNREFUSED' }),
    }),
  ]
  for (const error of outages) assert.equal(isDatabaseUnavailable(error), true, error.message)

  const bugsAndData = [
    withCode('duplicate key value', { code: '23505' }),
    withCode("Duplicate entry 'a'", { code: 'ER_DUP_ENTRY', errno: 1062 }),
    withCode('syntax error at or near', { code: '42601' }),
    withCode('canceling statement due to statement timeout', { code: '57014' }),
    new TypeError('cannot read properties of undefined'),
    'ECONNREFUSED',
    undefined,
  ]
  for (const error of bugsAndData) assert.equal(isDatabaseUnavailable(error), false, String(error))
})

test('a database outage is answered 503 DATABASE_UNAVAILABLE with Retry-After, not 500', async (t) => {
  const { baseUrl } = await buildTestApp(
    t,
    {},
    {
      beforeListen: (app) => {
        app.get('/test/db-down', async () => {
          throw withCode('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2', {
            code: 'ECONNREFUSED',
          })
        })
      },
    },
  )
  const response = await fetch(`${baseUrl}/test/db-down`)
  assert.equal(response.status, 503)
  assert.equal(response.headers.get('retry-after'), '2')
  const body = (await response.json()) as { detail: string; code: string }
  assert.equal(body.code, 'DATABASE_UNAVAILABLE')
  assert.doesNotMatch(body.detail, /hunter2|10\.0\.0\.5/)
})

// Private servers need the server binaries and root (initdb runs as the postgres user).
const canRunServers =
  process.getuid?.() === 0 &&
  existsSync('/usr/lib/postgresql/15/bin/initdb') &&
  existsSync('/usr/bin/mariadb-install-db')
const servers = canRunServers
  ? { skip: false }
  : { skip: 'no PostgreSQL/MariaDB binaries or not root' }

describe('a server database stopped under an open pool', servers, () => {
  for (const [name, start] of [
    ['PostgreSQL', startPrivatePostgres],
    ['MariaDB', startPrivateMariadb],
  ] as const) {
    test(`${name}: no crash, queries fail as unavailable, the same pool works once it is back`, async (t) => {
      const cleanup = cleanupStack(t)
      const server: PrivateServer = await start(cleanup)
      const warnings: string[] = []
      const logger = pino(
        { level: 'warn' },
        { write: (line: string) => warnings.push(JSON.parse(line).msg) },
      )
      const handle = createDatabase(testConfig({ DATABASE_URL: server.url }), logger)
      cleanup.after(() => handle.close())
      await handle.ping()

      // A connection held in an open transaction when the server goes: the client is checked
      // out of the pool, so only its own 'error' listener stands between it and a crash.
      let release: () => void = () => {}
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      const transaction = handle.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx)
        await held
        await sql`select 1`.execute(trx)
      })
      const outcome = transaction.then(
        () => undefined,
        (error: unknown) => error,
      )
      await new Promise((resolve) => setTimeout(resolve, 100))
      await server.stop()
      await new Promise((resolve) => setTimeout(resolve, 200))
      release()
      const failure = await outcome
      assert.ok(isDatabaseUnavailable(failure), `the transaction failed with ${String(failure)}`)

      const ping = await handle.ping().then(
        () => undefined,
        (error: unknown) => error,
      )
      assert.ok(isDatabaseUnavailable(ping), `a query while down failed with ${String(ping)}`)

      await server.start()
      const deadline = Date.now() + 10_000
      for (;;) {
        try {
          await handle.ping()
          break
        } catch (error) {
          assert.ok(isDatabaseUnavailable(error), String(error))
          if (Date.now() > deadline) throw error
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      assert.ok(warnings.includes('database connection lost'), warnings.join('; '))
    })
  }
})
