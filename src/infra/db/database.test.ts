import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { type Kysely, sql } from 'kysely'
import pino from 'pino'
import { scratchDir, testConfig } from '../../../test/helpers/app.ts'
import { dialectCases, openTestDatabase } from '../../../test/helpers/db.ts'
import { createDatabase, dialectOf } from './index.ts'
import { liftStatementTimeout } from './server-dialects.ts'

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, logger: pino({ level }, stream) }
}

test('the dialect comes from the DATABASE_URL scheme alone', () => {
  assert.equal(dialectOf('sqlite:./data/servekit.db'), 'sqlite')
  assert.equal(dialectOf('mysql://root@db:3306/app'), 'mysql')
  assert.equal(dialectOf('mariadb://root@db:3306/app'), 'mysql')
  assert.equal(dialectOf('postgres://u@db/app'), 'postgres')
  assert.equal(dialectOf('postgresql://u@db/app'), 'postgres')
  assert.throws(() => dialectOf('oracle://db'), /DATABASE_URL must start with/)
})

test('a SQLite file is created with its folder, in WAL mode with foreign keys on', async () => {
  const path = join(scratchDir(), 'nested', 'deeper', 'app.db')
  const handle = createDatabase(
    testConfig({ DATABASE_URL: `sqlite:${path}`, DB_CONNECT_TIMEOUT_MS: '1234' }),
    pino({ level: 'silent' }),
  )
  try {
    assert.ok(existsSync(path))
    const pragma = async (name: string) =>
      Object.values((await sql.raw(`pragma ${name}`).execute(handle.db)).rows[0] as object)[0]
    assert.equal(await pragma('journal_mode'), 'wal')
    assert.equal(await pragma('foreign_keys'), 1)
    assert.equal(await pragma('busy_timeout'), 1234)
    await handle.ping()
  } finally {
    await handle.close()
  }
  await handle.close()
  await assert.rejects(handle.ping(), 'closed means closed')
})

test('SQLite reads match the other drivers: BIGINT as string, Date back, plain objects', async () => {
  const handle = createDatabase(
    testConfig({ DATABASE_URL: 'sqlite::memory:' }),
    pino({ level: 'silent' }),
  )
  try {
    await sql`create table probe (id bigint, n integer, at datetime, price numeric(15, 2))`.execute(
      handle.db,
    )
    const at = new Date(Date.UTC(2026, 0, 1, 12, 0, 0, 7))
    await sql`insert into probe values (${'9223372036854775807'}, ${42}, ${at}, ${12})`.execute(
      handle.db,
    )
    const selectAll = sql<Record<string, unknown>>`select * from probe`
    const [row] = (await selectAll.execute(handle.db)).rows
    assert.deepEqual(row, { id: '9223372036854775807', n: 42, at, price: 12 })
    assert.equal(Object.getPrototypeOf(row), Object.prototype)
    const [counted] = (
      await sql<{ total: unknown }>`select count(*) as total from probe`.execute(handle.db)
    ).rows
    assert.equal(counted?.total, 1)

    // A cached SELECT * must not keep the old column list after the table changes.
    await sql`alter table probe add column extra text`.execute(handle.db)
    const [after] = (await selectAll.execute(handle.db)).rows
    assert.equal(after?.extra, null)
    assert.equal(after?.id, '9223372036854775807')
  } finally {
    await handle.close()
  }
})

test('a statement slower than DB_SLOW_QUERY_MS is logged with its SQL; values only at debug', async () => {
  const run = async (level: string, slowMs: string) => {
    const { lines, logger } = capture(level)
    const handle = createDatabase(
      testConfig({ DATABASE_URL: 'sqlite::memory:', DB_SLOW_QUERY_MS: slowMs }),
      logger,
    )
    await sql`select ${'secret value'} as probe, ${'$2b$12$abcdefghijklmnopqrstuv'} as hash`.execute(
      handle.db,
    )
    await handle.close()
    return lines.filter((line) => line.msg === 'slow query')
  }
  const [atInfo] = await run('info', '0')
  assert.equal(atInfo?.level, 40, 'a warning')
  assert.equal(typeof atInfo?.durationMs, 'number')
  assert.match(String(atInfo?.sql), /select \? as probe/)
  assert.equal(atInfo?.params, undefined)

  const [atDebug] = await run('debug', '0')
  assert.deepEqual(atDebug?.params, ['secret value', '[redacted]'], 'bcrypt hashes never')

  assert.deepEqual(await run('debug', '10000'), [], 'fast statements are not logged')
})

test('a server that never answers fails the first query after DB_CONNECT_TIMEOUT_MS', async (t) => {
  const sockets: Socket[] = []
  const silent = createServer((socket) => sockets.push(socket)).listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  for (const url of [`mysql://root@127.0.0.1:${port}/x`, `postgres://u@127.0.0.1:${port}/x`]) {
    const handle = createDatabase(
      testConfig({ DATABASE_URL: url, DB_CONNECT_TIMEOUT_MS: '300' }),
      pino({ level: 'silent' }),
    )
    const startedMs = Date.now()
    await assert.rejects(handle.ping(), Error, url)
    const elapsedMs = Date.now() - startedMs
    assert.ok(elapsedMs >= 250 && elapsedMs < 3000, `${url}: gave up after ${elapsedMs} ms`)
    await handle.close()
  }
})

for (const { dialect, options } of await dialectCases()) {
  if (dialect === 'sqlite') continue
  test(
    `${dialect}: statements end at DB_QUERY_TIMEOUT_MS; the pool holds DB_POOL_SIZE`,
    options,
    async (t) => {
      const { handle } = await openTestDatabase(t, dialect, {
        env: { DB_QUERY_TIMEOUT_MS: '300', DB_POOL_SIZE: '2' },
      })
      const sleep = (seconds: number) =>
        dialect === 'mysql'
          ? sql`select sleep(${seconds}) as slept`
          : sql`select pg_sleep(${seconds}) as slept`
      await assert.rejects(
        sleep(1).execute(handle.db),
        /statement timeout|max_statement_time|interrupted/,
      )

      await handle.db.connection().execute(async (session) => {
        const restore = await liftStatementTimeout(session as Kysely<unknown>, dialect)
        await sleep(0.5).execute(session)
        await restore()
        await assert.rejects(sleep(1).execute(session), Error, 'restored for the next user')
      })

      const startedMs = Date.now()
      await Promise.all([1, 2, 3, 4].map(() => sleep(0.15).execute(handle.db)))
      const elapsedMs = Date.now() - startedMs
      assert.ok(elapsedMs >= 280, `4 sleeps on 2 connections take two rounds (${elapsedMs} ms)`)
    },
  )
}
