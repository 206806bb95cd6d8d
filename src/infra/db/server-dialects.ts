import { createRequire } from 'node:module'
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Kysely,
  MysqlAdapter,
  MysqlDialect,
  PostgresDialect,
  sql,
} from 'kysely'
import type * as Mysql2 from 'mysql2'
import type Pg from 'pg'

// The drivers are required when a pool is made, not imported at the top: a process uses one of
// them at most (none in embedded mode), and each costs start-up time and memory. Both are
// CommonJS, so a synchronous require keeps createDatabase synchronous.
const require = createRequire(import.meta.url)

/** What the server dialects need from the config, already parsed. */
export interface ServerDialectSettings {
  url: string
  poolSize: number
  connectTimeoutMs: number
  queryTimeoutMs: number
  applicationName: string
  onPoolError: (error: Error) => void
  /** Given, once the pool exists, a reader of its use (the metrics read it at scrape time). */
  onPoolStats?: (read: () => PoolStats) => void
}

/** How a connection pool is used right now. */
export interface PoolStats {
  /** The most connections the pool opens. */
  max: number
  /** Connections open, in use or idle. */
  open: number
  idle: number
  /** Queries waiting for a connection. */
  waiting: number
}

/**
 * MySQL / MariaDB through a mysql2 pool. BIGINT comes back as a decimal string, DECIMAL as a
 * number, DATETIME as a Date read and written in UTC (the session time zone is +00:00 too).
 */
export function createMysqlDialect(settings: ServerDialectSettings): MysqlDialect {
  const url = new URL(settings.url)
  const { createPool } = require('mysql2') as typeof Mysql2
  const pool = createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
    ...(url.searchParams.get('ssl') === 'true' ? { ssl: { rejectUnauthorized: true } } : {}),
    connectionLimit: settings.poolSize,
    maxIdle: settings.poolSize,
    idleTimeout: 60_000,
    connectTimeout: settings.connectTimeoutMs,
    enableKeepAlive: true,
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: true,
    timezone: 'Z',
  })
  pool.on('connection', (connection) => connection.on('error', settings.onPoolError))
  // mysql2 exposes no counters; these queues are what its own pool logic reads.
  const queues = pool as unknown as Record<
    '_allConnections' | '_freeConnections' | '_connectionQueue',
    { length: number } | undefined
  >
  settings.onPoolStats?.(() => ({
    max: settings.poolSize,
    open: queues._allConnections?.length ?? 0,
    idle: queues._freeConnections?.length ?? 0,
    waiting: queues._connectionQueue?.length ?? 0,
  }))
  return new ServerMysqlDialect({
    pool,
    onCreateConnection: async (connection) => {
      await setSessionDefaults(connection, settings.queryTimeoutMs)
    },
  })
}

/** PostgreSQL through a pg pool. INT8 comes back as a decimal string (pg's default), NUMERIC as
 * a number, TIMESTAMPTZ as a Date. */
export function createPostgresDialect(settings: ServerDialectSettings): PostgresDialect {
  const pg = require('pg') as typeof Pg
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.poolSize,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    // Server side, so a migration can lift it for its own session (SET statement_timeout).
    statement_timeout: settings.queryTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: settings.applicationName,
    types: { getTypeParser: postgresTypeParser(pg) as typeof pg.types.getTypeParser },
  })
  // An idle client losing its server emits here; without a listener the process would crash.
  pool.on('error', settings.onPoolError)
  // A client checked out of the pool (inside a transaction, between two queries) has no pool
  // listener: the server shutting down (57P01) or the socket breaking emits 'error' on the
  // client itself, which would crash the process too. The broken client is not queryable any
  // more; the query that uses it fails (DATABASE_UNAVAILABLE) and the pool discards it on release.
  pool.on('connect', (client) => client.on('error', settings.onPoolError))
  settings.onPoolStats?.(() => ({
    max: settings.poolSize,
    open: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
  }))
  return new PostgresDialect({ pool })
}

const NUMERIC_OID = 1700

function postgresTypeParser(pg: typeof Pg) {
  return (oid: number, format?: 'text' | 'binary'): unknown => {
    if (oid === NUMERIC_OID && format !== 'binary') return parseFloat
    return pg.types.getTypeParser(oid, format ?? 'text')
  }
}

/**
 * Lifts the statement timeout of the session `db` is bound to and resolves to a function that
 * puts it back. The migration runner uses it: a lock wait or an ALTER on a big table may rightly
 * take longer than a request's query.
 */
export async function liftStatementTimeout(
  db: Kysely<unknown>,
  dialect: 'mysql' | 'postgres',
): Promise<() => Promise<void>> {
  if (dialect === 'postgres') {
    const { rows } = await sql<{
      previous: string
    }>`select current_setting('statement_timeout') as previous`.execute(db)
    const previous = rows[0]?.previous ?? '0'
    await sql`select set_config('statement_timeout', '0', false)`.execute(db)
    return async () => {
      await sql`select set_config('statement_timeout', ${previous}, false)`.execute(db)
    }
  }
  const { rows } = await sql<{ version: string }>`select version() as version`.execute(db)
  const variable = timeoutVariable(rows[0]?.version ?? '')
  const current = await sql<{
    previous: number | string
  }>`select ${sql.raw(`@@session.${variable}`)} as previous`.execute(db)
  const previous = Number(current.rows[0]?.previous ?? 0)
  await sql`set session ${sql.raw(variable)} = 0`.execute(db)
  return async () => {
    await sql`set session ${sql.raw(variable)} = ${sql.lit(previous)}`.execute(db)
  }
}

async function setSessionDefaults(connection: DatabaseConnection, timeoutMs: number) {
  const { rows } = await connection.executeQuery<{ version: string }>(
    CompiledQuery.raw('select version() as version'),
  )
  await connection.executeQuery(CompiledQuery.raw("set session time_zone = '+00:00'"))
  await connection.executeQuery(
    CompiledQuery.raw(statementTimeoutSql(rows[0]?.version ?? '', timeoutMs)),
  )
}

/** MariaDB limits every statement (in seconds); MySQL limits SELECTs (in milliseconds). */
function timeoutVariable(version: string): 'max_statement_time' | 'max_execution_time' {
  return version.includes('MariaDB') ? 'max_statement_time' : 'max_execution_time'
}

function statementTimeoutSql(version: string, timeoutMs: number): string {
  const ms = Math.max(0, Math.floor(timeoutMs))
  const variable = timeoutVariable(version)
  return `set session ${variable} = ${variable === 'max_statement_time' ? ms / 1000 : ms}`
}

/**
 * Kysely's MySQL migration lock uses one fixed name for the whole server and ignores a timed
 * out GET_LOCK. This one is named per database (other databases on the server migrate
 * independently) and refuses to go on without the lock.
 */
class ServerMysqlDialect extends MysqlDialect {
  override createAdapter(): DialectAdapter {
    return new LockingMysqlAdapter()
  }
}

const MIGRATION_LOCK_WAIT_SECONDS = 3600

class LockingMysqlAdapter extends MysqlAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    const { rows } = await sql<{ acquired: number | string | null }>`
      select get_lock(concat('servekit-migrate-', md5(database())), ${sql.lit(MIGRATION_LOCK_WAIT_SECONDS)}) as acquired`.execute(
      db,
    )
    if (Number(rows[0]?.acquired) !== 1) {
      throw new Error(
        `another process held the migration lock for over ${MIGRATION_LOCK_WAIT_SECONDS} s`,
      )
    }
  }

  override async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`select release_lock(concat('servekit-migrate-', md5(database())))`.execute(db)
  }
}
