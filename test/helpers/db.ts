import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { createPool } from 'mysql2/promise'
import pg from 'pg'
import pino from 'pino'
import type { Config } from '../../src/config/index.ts'
import {
  createDatabase,
  type DatabaseHandle,
  type DialectName,
  migrateToLatest,
} from '../../src/infra/db/index.ts'
import { scratchDir, testConfig } from './app.ts'
import { serviceUrls, whenReachable } from './services.ts'

/** Every database the suites run against. */
export const DIALECTS: readonly DialectName[] = ['sqlite', 'mysql', 'postgres']

/** Test options for a suite on `dialect`: SQLite always runs; servers as whenReachable says. */
export async function dialectOptions(dialect: DialectName): Promise<{ skip: string | false }> {
  return dialect === 'sqlite' ? { skip: false } : whenReachable(dialect)
}

/**
 * Every dialect with its test options, probed up front, so a file registers all its tests in one
 * go (`for (const { dialect, options } of await dialectCases()) test(...)`): a test registered
 * after an await may come after the run has ended.
 */
export async function dialectCases(): Promise<
  Array<{ dialect: DialectName; options: { skip: string | false } }>
> {
  const options = await Promise.all(DIALECTS.map(dialectOptions))
  return DIALECTS.map((dialect, index) => ({
    dialect,
    options: options[index] ?? { skip: false },
  }))
}

/** Anything with `after`: a test's context, or a suite's hooks. */
interface Cleanup {
  after(fn: () => Promise<void>): void
}

export interface TestDatabaseOptions {
  /** Apply every migration first (default true); migration tests start from nothing. */
  isMigrated?: boolean
}

/**
 * A database of its own for one test file or test, and its DATABASE_URL: a new SQLite file, or
 * a new database `servekit_t_<random>` on the MySQL/PostgreSQL server, dropped afterwards. Other
 * suites (and other people's test runs) on the same servers never see it.
 */
export async function createTestDatabase(
  t: Cleanup,
  dialect: DialectName,
  options: TestDatabaseOptions = {},
): Promise<string> {
  const url = await createEmptyDatabase(t, dialect)
  if (options.isMigrated ?? true) {
    const handle = createDatabase(testConfig({ DATABASE_URL: url }), silentLogger)
    try {
      await migrateToLatest(handle)
    } finally {
      await handle.close()
    }
  }
  return url
}

export interface OpenTestDatabase {
  handle: DatabaseHandle
  config: Readonly<Config>
  url: string
}

/** createTestDatabase, opened: the handle closes (before the database is dropped) afterwards. */
export async function openTestDatabase(
  t: TestContext,
  dialect: DialectName,
  options: TestDatabaseOptions & { env?: Record<string, string> } = {},
): Promise<OpenTestDatabase> {
  const closers: Array<() => Promise<void>> = []
  t.after(async () => {
    for (const close of closers.reverse()) await close()
  })
  const url = await createTestDatabase({ after: (fn) => closers.push(fn) }, dialect, options)
  const config = testConfig({ DATABASE_URL: url, ...options.env })
  const handle = createDatabase(config, silentLogger)
  closers.push(() => handle.close())
  return { handle, config, url }
}

const silentLogger = pino({ level: 'silent' })

async function createEmptyDatabase(t: Cleanup, dialect: DialectName): Promise<string> {
  if (dialect === 'sqlite') return `sqlite:${join(scratchDir(), 'test.db')}`

  const name = `servekit_t_${randomBytes(6).toString('hex')}`
  const server = new URL(serviceUrls[dialect])
  const url = new URL(server)
  url.pathname = `/${name}`

  if (dialect === 'mysql') {
    const admin = createPool({ uri: server.toString(), connectionLimit: 1 })
    try {
      await admin.query(`create database \`${name}\` character set utf8mb4`)
    } finally {
      await admin.end()
    }
    t.after(async () => {
      const dropper = createPool({ uri: server.toString(), connectionLimit: 1 })
      try {
        await dropper.query(`drop database if exists \`${name}\``)
      } finally {
        await dropper.end()
      }
    })
    return url.toString()
  }

  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: server.toString() })
    await client.connect()
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  }
  await run(`create database "${name}"`)
  // FORCE ends connections a failed test left open, so the drop cannot hang.
  t.after(() => run(`drop database if exists "${name}" with (force)`))
  return url.toString()
}
