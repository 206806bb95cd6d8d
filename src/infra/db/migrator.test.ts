import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { type Kysely, type Migration, sql } from 'kysely'
import pino from 'pino'
import { testConfig } from '../../../test/helpers/app.ts'
import { createTestDatabase, dialectCases } from '../../../test/helpers/db.ts'
import {
  createDatabase,
  type DatabaseHandle,
  MigrationError,
  migrateDown,
  migrateToLatest,
  migrationStatus,
} from './index.ts'

const STEPS = ['0001_create_users_and_items', '0002_create_orders', '0003_create_outbox']
const APP_TABLES = ['items', 'orders', 'outbox', 'users']

async function open(t: { after(fn: () => Promise<void>): void }, url: string) {
  const handle = createDatabase(testConfig({ DATABASE_URL: url }), pino({ level: 'silent' }))
  t.after(() => handle.close())
  return handle
}

async function appTables(handle: DatabaseHandle): Promise<string[]> {
  const tables = await handle.db.introspection.getTables()
  return tables
    .map((table) => table.name)
    .filter((name) => APP_TABLES.includes(name))
    .sort()
}

for (const { dialect, options } of await dialectCases()) {
  test(`migrations on ${dialect}`, options, async (t) => {
    await t.test('up applies every step in order; status lists each with its time', async (t) => {
      const handle = await open(t, await createTestDatabase(t, dialect, { isMigrated: false }))
      assert.deepEqual(
        (await migrationStatus(handle)).map((step) => [step.name, step.appliedAt]),
        STEPS.map((name) => [name, undefined]),
      )
      const before = Date.now()
      assert.deepEqual(await migrateToLatest(handle), STEPS)
      const status = await migrationStatus(handle)
      assert.deepEqual(
        status.map((step) => step.name),
        STEPS,
      )
      for (const step of status) {
        assert.match(String(step.appliedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        assert.ok(Date.parse(String(step.appliedAt)) >= before - 1000)
      }
      assert.deepEqual(await appTables(handle), APP_TABLES)
      assert.deepEqual(await migrateToLatest(handle), [], 'a second run has nothing to do')
    })

    await t.test('down reverts the last step; down --all reverts every step', async (t) => {
      const handle = await open(t, await createTestDatabase(t, dialect))
      assert.deepEqual(await migrateDown(handle), ['0003_create_outbox'])
      assert.deepEqual(
        (await migrationStatus(handle)).map((step) => step.appliedAt !== undefined),
        [true, true, false],
      )
      assert.deepEqual(await appTables(handle), ['items', 'orders', 'users'])
      assert.deepEqual(await migrateDown(handle, { all: true }), [
        '0002_create_orders',
        '0001_create_users_and_items',
      ])
      assert.deepEqual(await appTables(handle), [])
      assert.deepEqual(await migrateToLatest(handle), STEPS, 'and up again')
    })

    await t.test('the schema enforces the rules the code relies on', async (t) => {
      const handle = await open(t, await createTestDatabase(t, dialect))
      const now = new Date()
      const base = { created_at: now, updated_at: now, creator_id: '1' }
      await handle.db
        .insertInto('items')
        .values({ id: '10', name: 'n', price: 1, description: null, ...base })
        .execute()
      const order = { id: '20', item_id: '10', quantity: 1, idempotency_key: 'k', ...base }
      await handle.db.insertInto('orders').values(order).execute()
      const [stored] = await handle.db.selectFrom('orders').selectAll().execute()
      assert.equal(stored?.status, 'pending', 'orders start pending')
      assert.equal(
        (await handle.db.selectFrom('items').select('stock').executeTakeFirst())?.stock,
        0,
        'stock defaults to 0',
      )
      const rejects = async (what: string, values: Record<string, unknown>) =>
        assert.rejects(
          handle.db
            .insertInto('orders')
            .values({ ...order, ...values })
            .execute(),
          Error,
          what,
        )
      await rejects('same idempotency key for the same creator', { id: '21' })
      await rejects('unknown status', { id: '22', idempotency_key: null, status: 'lost' as never })
      await rejects('quantity below 1', { id: '23', idempotency_key: null, quantity: 0 })
      await rejects('unknown item', { id: '24', idempotency_key: null, item_id: '999' })
      await handle.db
        .insertInto('orders')
        .values({ ...order, id: '25', creator_id: '2' })
        .execute()
    })

    await t.test('a failing step is named; the database keeps what it can', async (t) => {
      const handle = await open(t, await createTestDatabase(t, dialect, { isMigrated: false }))
      const migrations: Record<string, Migration> = {
        '0001_good': {
          up: (db: Kysely<unknown>) =>
            db.schema.createTable('good').addColumn('id', 'bigint').execute(),
        },
        '0002_bad': {
          up: async (db: Kysely<unknown>) => {
            await db.schema.createTable('half').addColumn('id', 'bigint').execute()
            await sql`select * from no_such_table`.execute(db)
          },
        },
      }
      const error = await migrateToLatest(handle, { migrations }).catch((caught: unknown) => caught)
      assert.ok(error instanceof MigrationError, String(error))
      assert.equal(error.failedStep, '0002_bad')
      assert.match(error.message, /migration up "0002_bad" failed: .*no_such_table/)
      const tables = (await handle.db.introspection.getTables()).map((table) => table.name)
      const applied = (await migrationStatus(handle, { migrations }))
        .filter((step) => step.appliedAt)
        .map((step) => step.name)
      if (dialect === 'mysql') {
        // MySQL commits each DDL statement: the good step stays, the bad one is half done.
        assert.deepEqual(error.keptSteps, ['0001_good'])
        assert.deepEqual(applied, ['0001_good'])
        assert.match(error.message, /steps kept: 0001_good; .*may be partly applied/)
        assert.ok(tables.includes('half'))
      } else {
        assert.match(error.message, /rolled back, the schema is as it was/)
        assert.deepEqual(applied, [])
        assert.ok(!tables.includes('good') && !tables.includes('half'), tables.join())
      }
    })

    if (dialect !== 'sqlite') {
      await t.test('three replicas migrating at once apply each step exactly once', async (t) => {
        const url = await createTestDatabase(t, dialect, { isMigrated: false })
        const replicas = await Promise.all([open(t, url), open(t, url), open(t, url)])
        const runs = await Promise.all(replicas.map((replica) => migrateToLatest(replica)))
        assert.deepEqual(runs.flat().sort(), STEPS, `each step once: ${JSON.stringify(runs)}`)
        assert.equal(runs.filter((run) => run.length > 0).length, 1, 'one replica did the work')
        const status = await migrationStatus(replicas[0] as DatabaseHandle)
        assert.ok(status.every((step) => step.appliedAt))
      })
    }
  })
}

test('three threads migrating one SQLite file at once apply a slow step exactly once', async (t) => {
  const url = await createTestDatabase(t, 'sqlite', { isMigrated: false })
  // Each thread has its own connection, as a replica process would. The step sleeps between its
  // two statements, so without the lock the runs would overlap and the second CREATE would fail.
  const script = `
    import { parentPort, workerData } from 'node:worker_threads'
    import pino from ${JSON.stringify(import.meta.resolve('pino'))}
    import { createDatabase, migrateToLatest } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)}
    const handle = createDatabase({ APP_NAME: 'test', DATABASE_URL: workerData.url, DB_POOL_SIZE: 1,
      DB_CONNECT_TIMEOUT_MS: 10000, DB_QUERY_TIMEOUT_MS: 10000, DB_SLOW_QUERY_MS: 10000 }, pino({ level: 'silent' }))
    const migrations = { '0001_slow': { up: async (db) => {
      await db.schema.createTable('first').addColumn('id', 'bigint').execute()
      await new Promise((resolve) => setTimeout(resolve, 300))
      await db.schema.createTable('second').addColumn('id', 'bigint').execute()
    } } }
    try { parentPort.postMessage({ applied: await migrateToLatest(handle, { migrations }) }) }
    catch (error) { parentPort.postMessage({ error: String(error) }) }
    finally { await handle.close() }
  `
  const runs = await Promise.all(
    [1, 2, 3].map(async () => {
      const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(script)}`), {
        workerData: { url },
      })
      const [message] = await once(worker, 'message')
      await once(worker, 'exit')
      return message as { applied?: string[]; error?: string }
    }),
  )
  assert.deepEqual(
    runs.map((run) => run.error),
    [undefined, undefined, undefined],
  )
  assert.deepEqual(
    runs.flatMap((run) => run.applied ?? []),
    ['0001_slow'],
  )
})
