import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { type Dialect, Kysely, sql } from 'kysely'
import type { Logger } from 'pino'
import type { Config } from '../../config/index.ts'
import { createQueryLog } from './query-log.ts'
import type { Database } from './schema.ts'
import { createMysqlDialect, createPostgresDialect, type PoolStats } from './server-dialects.ts'
import { NodeSqliteDialect } from './sqlite-dialect.ts'

/** The database families servekit runs on; only src/infra/db/ ever looks at this. */
export type DialectName = 'sqlite' | 'mysql' | 'postgres'

/** An open database: the typed query builder plus what the container needs to own it. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>
  readonly dialect: DialectName
  /** Resolves when the database answers a trivial query; throws otherwise (used by /ready). */
  ping(): Promise<void>
  /** Closes the pool (or the SQLite file); safe to call twice. */
  close(): Promise<void>
  /** The connection pool's use (MySQL, PostgreSQL); undefined for SQLite, which has no pool. */
  poolStats?(): PoolStats | undefined
}

export type DatabaseSettings = Pick<
  Config,
  | 'APP_NAME'
  | 'DATABASE_URL'
  | 'DB_POOL_SIZE'
  | 'DB_CONNECT_TIMEOUT_MS'
  | 'DB_QUERY_TIMEOUT_MS'
  | 'DB_SLOW_QUERY_MS'
>

/** The dialect a DATABASE_URL names, from its scheme alone. */
export function dialectOf(url: string): DialectName {
  if (url.startsWith('sqlite:')) return 'sqlite'
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) return 'mysql'
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres'
  throw new Error('DATABASE_URL must start with sqlite:, mysql://, mariadb:// or postgres://')
}

/**
 * Opens the database DATABASE_URL names. Server pools connect lazily (the first query opens a
 * connection); the SQLite file is opened here, in WAL mode with foreign keys on. Nothing is
 * opened when this module is imported.
 */
export function createDatabase(config: DatabaseSettings, logger: Logger): DatabaseHandle {
  const dialect = dialectOf(config.DATABASE_URL)
  const log = createQueryLog(logger, config.DB_SLOW_QUERY_MS)
  const sqliteFile = dialect === 'sqlite' ? openSqliteFile(config) : undefined
  let readPoolStats: (() => PoolStats) | undefined
  const db = new Kysely<Database>({
    dialect: sqliteFile
      ? new NodeSqliteDialect(sqliteFile)
      : openServerDialect(dialect, config, logger, (read) => {
          readPoolStats = read
        }),
    log,
  })
  let closing: Promise<void> | undefined
  return {
    db,
    dialect,
    async ping() {
      await sql`select 1`.execute(db)
    },
    poolStats: () => readPoolStats?.(),
    close() {
      closing ??= db.destroy().then(() => {
        // Kysely closes the file only if it ran a query; close it either way.
        if (sqliteFile?.isOpen) sqliteFile.close()
      })
      return closing
    },
  }
}

function openServerDialect(
  dialect: DialectName,
  config: DatabaseSettings,
  logger: Logger,
  onPoolStats: (read: () => PoolStats) => void,
): Dialect {
  const settings = {
    url: config.DATABASE_URL.replace(/^mariadb:/, 'mysql:'),
    poolSize: config.DB_POOL_SIZE,
    connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: config.DB_QUERY_TIMEOUT_MS,
    applicationName: config.APP_NAME,
    onPoolError: (error: Error) => logger.warn({ err: error }, 'database connection lost'),
    onPoolStats,
  }
  return dialect === 'mysql' ? createMysqlDialect(settings) : createPostgresDialect(settings)
}

function openSqliteFile(config: DatabaseSettings): DatabaseSync {
  const location = config.DATABASE_URL.slice('sqlite:'.length)
  const isMemory = location === ':memory:' || location === ''
  if (!isMemory) mkdirSync(dirname(resolve(location)), { recursive: true })
  const database = new DatabaseSync(isMemory ? ':memory:' : location, {
    enableForeignKeyConstraints: true,
    // How long a write waits for another process's write lock. node:sqlite is synchronous, so
    // the wait blocks this process's event loop: keep it short.
    timeout: config.DB_CONNECT_TIMEOUT_MS,
  })
  try {
    // WAL lets readers run during a write; NORMAL sync is durable across process crashes in
    // WAL mode and loses at most the last commits on power loss.
    database.exec('pragma journal_mode = wal')
    database.exec('pragma synchronous = normal')
    database.exec('pragma foreign_keys = on')
  } catch (error) {
    database.close()
    throw error
  }
  return database
}
