import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteDriver,
  type SqliteStatement,
} from 'kysely'

/**
 * Kysely's SQLite dialect on Node's built-in `node:sqlite` (no native addon to rebuild per Node
 * version). Kysely's driver expects better-sqlite3's shape; this file adapts `DatabaseSync` to it
 * and makes the values read back match what the MySQL and PostgreSQL drivers give:
 * - columns declared BIGINT (ids) come back as decimal strings, never as lossy numbers;
 * - other integers come back as numbers (as strings only past 2^53, where a number would lie);
 * - columns declared DATETIME (ISO 8601 text) come back as Date; a Date parameter is bound as
 *   its ISO 8601 UTC text, so stored timestamps sort and compare as text.
 */
export class NodeSqliteDialect extends SqliteDialect {
  readonly #database: SqliteDatabase

  constructor(database: DatabaseSync) {
    const adapted = adaptDatabase(database)
    super({ database: adapted })
    this.#database = adapted
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.#database })
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter()
  }
}

/**
 * Transactions start with BEGIN IMMEDIATE: the write lock is taken up front, so two processes
 * sharing the file queue on busy_timeout instead of failing with SQLITE_BUSY when a reader
 * turns into a writer.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}

/**
 * SQLite's DDL is transactional, so migrations run in one transaction: a failed step leaves the
 * schema as it was, and BEGIN IMMEDIATE makes other processes wait for the run to finish.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

type Converter = (value: unknown) => unknown

interface CachedStatement {
  statement: StatementSync
  names: string[]
  converters: Converter[]
}

const STATEMENT_CACHE_SIZE = 200
const DDL = /^\s*(create|alter|drop)\b/i

function adaptDatabase(database: DatabaseSync): SqliteDatabase {
  // Preparing is a large part of a short query's cost; the driver runs one statement at a time
  // on its one connection, so reusing prepared statements is safe.
  const cache = new Map<string, CachedStatement>()

  const prepare = (sql: string): CachedStatement => {
    let cached = cache.get(sql)
    if (cached) {
      cache.delete(sql)
      cache.set(sql, cached)
      return cached
    }
    const statement = database.prepare(sql)
    statement.setReadBigInts(true)
    // Rows as arrays, turned into plain objects below: node:sqlite's own row objects have a null
    // prototype, which the other drivers' rows do not.
    statement.setReturnArrays(true)
    const columns = statement.columns()
    cached = {
      statement,
      names: columns.map((column) => column.name),
      converters: columns.map((column) => converterFor(column.type)),
    }
    cache.set(sql, cached)
    if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string)
    return cached
  }

  return {
    close() {
      cache.clear()
      if (database.isOpen) database.close()
    },
    prepare(sql: string): SqliteStatement {
      const { statement, names, converters } = prepare(sql)
      const toObject = (values: unknown[]) => {
        const row: Record<string, unknown> = {}
        for (let index = 0; index < names.length; index++) {
          row[names[index] as string] = (converters[index] as Converter)(values[index])
        }
        return row
      }
      return {
        reader: names.length > 0,
        all: (parameters) =>
          (statement.all(...bindable(parameters)) as unknown as unknown[][]).map(toObject),
        run: (parameters) => {
          const result = statement.run(...bindable(parameters))
          // A schema change can alter what a cached SELECT * returns: prepare afresh.
          if (DDL.test(sql)) cache.clear()
          return result
        },
        *iterate(parameters) {
          for (const values of statement.iterate(...bindable(parameters)))
            yield toObject(values as unknown as unknown[])
        },
      }
    },
  }
}

function converterFor(declaredType: string | null): Converter {
  const type = declaredType?.toLowerCase() ?? ''
  if (type === 'bigint') return (value) => (typeof value === 'bigint' ? value.toString() : value)
  if (type.startsWith('datetime'))
    return (value) => (typeof value === 'string' ? new Date(value) : value)
  return (value) =>
    typeof value === 'bigint'
      ? value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString()
      : value
}

function bindable(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters.map((value) => {
    if (value instanceof Date) return value.toISOString()
    if (typeof value === 'boolean') return value ? 1 : 0
    if (value === undefined) return null
    return value as SQLInputValue
  })
}
