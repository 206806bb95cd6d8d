import {
  type CreateTableBuilder,
  type Expression,
  type Kysely,
  MysqlAdapter,
  PostgresAdapter,
  type RawBuilder,
  SqliteAdapter,
  sql,
} from 'kysely'
import type { DialectName } from './database.ts'

/**
 * What a migration needs to write one schema for every dialect. Migrations are frozen history:
 * never change what these helpers emit; add a new helper for a new need.
 */
export interface SchemaKit {
  dialect: DialectName
  /** A UTC instant with millisecond precision: TIMESTAMPTZ(3), DATETIME(3) or ISO 8601 text. */
  timestamp: RawBuilder<unknown>
  /** Money: NUMERIC(15,2), up to 9,999,999,999,999.99. */
  money: RawBuilder<unknown>
  /** Table options: InnoDB, utf8mb4, and binary collation on MySQL, so text compares
   * case-sensitively there as it does on PostgreSQL and SQLite (a unique username means the same
   * thing everywhere). */
  table<T extends CreateTableBuilder<string, string>>(builder: T): T
  /** The base model fields: creator_id, created_at, updater_id, updated_at, deleted_at. */
  baseColumns<TB extends string, C extends string>(
    builder: CreateTableBuilder<TB, C>,
  ): CreateTableBuilder<TB, C | BaseColumnName>
}

type BaseColumnName = 'creator_id' | 'created_at' | 'updater_id' | 'updated_at' | 'deleted_at'

/** The dialect a migration runs on, read from the Kysely instance it was given. */
export function schemaKit(db: Kysely<unknown>): SchemaKit {
  const dialect = dialectOfKysely(db)
  const timestamp =
    dialect === 'postgres'
      ? sql`timestamptz(3)`
      : dialect === 'mysql'
        ? sql`datetime(3)`
        : // SQLite reads the declared type to know a column holds a timestamp (sqlite-dialect.ts).
          sql`datetime`
  return {
    dialect,
    timestamp,
    money: sql`numeric(15, 2)`,
    table: (builder) =>
      dialect === 'mysql'
        ? (builder.modifyEnd(
            sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin`,
          ) as typeof builder)
        : builder,
    baseColumns: (builder) =>
      builder
        .addColumn('creator_id', 'bigint')
        .addColumn('created_at', timestamp, (column) => column.notNull())
        .addColumn('updater_id', 'bigint')
        .addColumn('updated_at', timestamp, (column) => column.notNull())
        .addColumn('deleted_at', timestamp),
  }
}

function dialectOfKysely(db: Kysely<unknown>): DialectName {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  throw new Error(`unsupported database adapter ${adapter.constructor.name}`)
}

/** A check that `column` holds one of `values` (an enum that every dialect understands). */
export function oneOf(column: string, values: readonly string[]): Expression<unknown> {
  return sql`${sql.ref(column)} in (${sql.join(values.map((value) => sql.lit(value)))})`
}
