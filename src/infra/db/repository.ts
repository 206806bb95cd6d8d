import type { Insertable, Kysely, Selectable, Updateable } from 'kysely'
import type { IdGenerator } from '../../shared/ids/index.ts'
import type { BaseColumns, Database } from './schema.ts'

/**
 * The repository base (the Python service's BaseDao with its Query/Count/Update builders): the
 * reads and writes every business table shares, typed on the table, so a wrong column name or
 * value type in a filter, insert or update fails `tsc`. Rows come back serialised for the edges:
 * ids as decimal strings, timestamps as ISO 8601 UTC strings.
 */

/** Tables carrying the base model fields. */
export type TableName = {
  [K in keyof Database]: Database[K] extends BaseColumns ? K : never
}[keyof Database]

type Serialized<V> = V extends Date ? string : V

/** A row as repositories return it: Date columns become ISO 8601 UTC strings. */
export type Row<T> = { [K in keyof Selectable<T>]: Serialized<Selectable<T>[K]> }

type BaseColumnName = keyof BaseColumns

/** What a caller gives to insert: the table's own columns; the base fields are set here. */
export type NewRow<T> = Omit<Insertable<T>, BaseColumnName>

/** What a caller may change; the base fields are not among it. */
export type Changes<T> = Omit<Updateable<T>, BaseColumnName>

/** A value, or operators on it: equals, not equals, in, not in, and ranges. */
export type Condition<V> =
  | V
  | {
      eq?: V
      ne?: V
      in?: readonly V[]
      notIn?: readonly V[]
      gt?: V
      gte?: V
      lt?: V
      lte?: V
    }

/** Conditions by column, all of which must hold. `null` means IS NULL. */
export type Filters<T> = { [K in keyof Selectable<T>]?: Condition<Selectable<T>[K]> }

export type OrderBy<T> = ReadonlyArray<readonly [keyof Selectable<T> & string, 'asc' | 'desc']>

export interface ReadOptions {
  /** Include soft-deleted rows (hidden by default). */
  withDeleted?: boolean
  /** Only rows this user created. */
  creatorId?: string
}

export interface ListQuery<T> extends ReadOptions {
  where?: Filters<T>
  /** Default: newest first (id descending); id is always the last tie-breaker. */
  orderBy?: OrderBy<T>
  limit?: number
  offset?: number
}

export interface Page<R> {
  rows: R[]
  /** Rows matching the query across all pages. */
  total: number
}

export interface Repository<T extends BaseColumns> {
  findById(id: string, options?: ReadOptions): Promise<Row<T> | undefined>
  /** The rows with these ids that exist (and are live unless asked), in id order. */
  findByIds(ids: readonly string[], options?: ReadOptions): Promise<Row<T>[]>
  list(query?: ListQuery<T>): Promise<Row<T>[]>
  /** Page `page` (from 1) of `limit` rows, and the total. */
  paginate(
    page: number,
    limit: number,
    query?: Omit<ListQuery<T>, 'limit' | 'offset'>,
  ): Promise<Page<Row<T>>>
  count(query?: Omit<ListQuery<T>, 'limit' | 'offset' | 'orderBy'>): Promise<number>
  /** Inserts with a new snowflake id; creator and updater are `actorId`, both times are now. */
  insert(values: NewRow<T>, actorId?: string | null): Promise<Row<T>>
  /** Multi-row inserts in one transaction; resolves to the number of rows inserted. */
  insertMany(values: readonly NewRow<T>[], actorId?: string | null): Promise<number>
  /** Changes a live row, stamping updater_id and updated_at; undefined if no such live row. */
  update(
    id: string,
    changes: Changes<T>,
    actorId: string | null,
    options?: Pick<ReadOptions, 'creatorId'>,
  ): Promise<Row<T> | undefined>
  /** Marks a live row deleted; false if there was none. */
  softDelete(
    id: string,
    actorId: string | null,
    options?: Pick<ReadOptions, 'creatorId'>,
  ): Promise<boolean>
  /** Runs `fn` in a transaction (or the one already open) with this repository bound to it. */
  transaction<R>(fn: (repository: Repository<T>) => Promise<R>): Promise<R>
}

export interface RepositoryDeps {
  db: Kysely<Database>
  ids: IdGenerator
  /** The current time; tests inject it. */
  now?: () => Date
}

/** Runs `fn` in a new transaction on `db`, or directly in `db` when it is one already. */
export async function runInTransaction<R>(
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<R>,
): Promise<R> {
  if (db.isTransaction) return fn(db)
  return db.transaction().execute(fn)
}

// The generic body works on an untyped view of the database (Kysely cannot check a query whose
// table is a type parameter); the public types above are what keeps callers honest.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = Kysely<any>
type LooseRow = Record<string, unknown>

const BASE_COLUMNS: readonly BaseColumnName[] = [
  'id',
  'creator_id',
  'created_at',
  'updater_id',
  'updated_at',
  'deleted_at',
]

/** Rows per INSERT statement: SQLite allows 32,766 parameters, MySQL and PostgreSQL 65,535. */
const MAX_PARAMETERS = 30_000
const MAX_BATCH_ROWS = 1000

/** The base repository for `table`. */
export function createRepository<TB extends TableName>(
  table: TB,
  deps: RepositoryDeps,
): Repository<Database[TB]> {
  type T = Database[TB]
  const db = deps.db as unknown as Loose
  const name: string = table
  const now = deps.now ?? (() => new Date())
  const supportsReturning = deps.db.getExecutor().adapter.supportsReturning

  const select = (options: ReadOptions = {}) => {
    let query = db.selectFrom(name).selectAll()
    if (!options.withDeleted) query = query.where('deleted_at', 'is', null)
    if (options.creatorId !== undefined) query = query.where('creator_id', '=', options.creatorId)
    return query
  }

  const filtered = (query: ListQuery<T>) => {
    let builder = select(query)
    for (const [column, condition] of Object.entries(query.where ?? {})) {
      if (condition === undefined) continue
      if (!isOperators(condition)) {
        builder =
          condition === null
            ? builder.where(column, 'is', null)
            : builder.where(column, '=', condition)
        continue
      }
      for (const [operator, value] of Object.entries(condition)) {
        if (value === undefined) continue
        switch (operator) {
          case 'eq':
            builder = builder.where(column, value === null ? 'is' : '=', value)
            break
          case 'ne':
            builder = builder.where(column, value === null ? 'is not' : '<>', value)
            break
          case 'in':
          case 'notIn': {
            const values = value as unknown[]
            if (values.length > 0)
              builder = builder.where(column, operator === 'in' ? 'in' : 'not in', values)
            else if (operator === 'in') builder = builder.where((eb) => eb.lit(false))
            break
          }
          default:
            builder = builder.where(
              column,
              RANGE_OPERATORS[operator] ?? badOperator(operator),
              value,
            )
        }
      }
    }
    return builder
  }

  const findById = async (id: string, options?: ReadOptions) => {
    const row = await select(options).where('id', '=', id).executeTakeFirst()
    return row ? serialize<T>(row) : undefined
  }

  const list = async (query: ListQuery<T> = {}) => {
    let builder = filtered(query)
    const orderBy = query.orderBy ?? [['id', 'desc']]
    for (const [column, direction] of orderBy) builder = builder.orderBy(column, direction)
    if (!orderBy.some(([column]) => column === 'id')) builder = builder.orderBy('id', 'desc')
    if (query.limit !== undefined) builder = builder.limit(query.limit)
    if (query.offset !== undefined) {
      // MySQL accepts OFFSET only with a LIMIT; this is its documented "no limit".
      if (query.limit === undefined) builder = builder.limit(Number.MAX_SAFE_INTEGER)
      builder = builder.offset(query.offset)
    }
    return (await builder.execute()).map((row) => serialize<T>(row))
  }

  const count = async (query: ListQuery<T> = {}) => {
    const result = await filtered(query)
      .clearSelect()
      .select((eb) => eb.fn.countAll().as('total'))
      .executeTakeFirstOrThrow()
    // COUNT is BIGINT on MySQL and PostgreSQL, read as a string.
    return Number(result.total)
  }

  const stampNew = (values: NewRow<T>, actorId: string | null, at: Date): LooseRow => ({
    ...withoutBaseColumns(values),
    id: deps.ids.nextId(),
    creator_id: actorId,
    created_at: at,
    updater_id: actorId,
    updated_at: at,
    deleted_at: null,
  })

  const repository: Repository<T> = {
    findById,

    async findByIds(ids, options) {
      if (ids.length === 0) return []
      const rows = await select(options)
        .where('id', 'in', [...ids])
        .orderBy('id')
        .execute()
      return rows.map((row) => serialize<T>(row))
    },

    list,

    async paginate(page, limit, query = {}) {
      if (!Number.isInteger(page) || page < 1 || !Number.isInteger(limit) || limit < 1) {
        throw new RangeError(`paginate needs page >= 1 and limit >= 1, got ${page} and ${limit}`)
      }
      const [rows, total] = await Promise.all([
        list({ ...query, limit, offset: (page - 1) * limit }),
        count(query),
      ])
      return { rows, total }
    },

    count,

    async insert(values, actorId = null) {
      const row = stampNew(values, actorId, now())
      const insert = db.insertInto(name).values(row)
      if (supportsReturning)
        return serialize<T>(await insert.returningAll().executeTakeFirstOrThrow())
      await insert.execute()
      const inserted = await findById(row.id as string, { withDeleted: true })
      if (!inserted) throw new Error(`${table} row ${String(row.id)} vanished after insert`)
      return inserted
    },

    async insertMany(values, actorId = null) {
      if (values.length === 0) return 0
      const at = now()
      const rows = values.map((value) => stampNew(value, actorId, at))
      const columns = Object.keys(rows[0] as LooseRow).length
      const batch = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / columns)))
      await runInTransaction(deps.db, async (trx) => {
        for (let start = 0; start < rows.length; start += batch) {
          await (trx as unknown as Loose)
            .insertInto(name)
            .values(rows.slice(start, start + batch))
            .execute()
        }
      })
      return rows.length
    },

    async update(id, changes, actorId, options = {}) {
      let query = db
        .updateTable(name)
        .set({ ...withoutBaseColumns(changes), updater_id: actorId, updated_at: now() })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
      if (options.creatorId !== undefined) query = query.where('creator_id', '=', options.creatorId)
      if (supportsReturning) {
        const row = await query.returningAll().executeTakeFirst()
        return row ? serialize<T>(row) : undefined
      }
      const result = await query.executeTakeFirst()
      if (result.numUpdatedRows === 0n) return undefined
      return findById(id, options)
    },

    async softDelete(id, actorId, options = {}) {
      const at = now()
      let query = db
        .updateTable(name)
        .set({ deleted_at: at, updater_id: actorId, updated_at: at })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
      if (options.creatorId !== undefined) query = query.where('creator_id', '=', options.creatorId)
      const result = await query.executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    transaction(fn) {
      return runInTransaction(deps.db, (trx) => fn(createRepository(table, { ...deps, db: trx })))
    },
  }
  return repository
}

const RANGE_OPERATORS: Record<string, '>' | '>=' | '<' | '<='> = {
  gt: '>',
  gte: '>=',
  lt: '<',
  lte: '<=',
}

function badOperator(operator: string): never {
  throw new TypeError(`unknown filter operator "${operator}"`)
}

function isOperators(condition: unknown): condition is Record<string, unknown> {
  return (
    typeof condition === 'object' &&
    condition !== null &&
    !(condition instanceof Date) &&
    !Array.isArray(condition)
  )
}

/** Drops base fields a caller may have passed at run time (a request body with an id, say). */
function withoutBaseColumns(values: object): LooseRow {
  const copy: LooseRow = { ...values }
  for (const column of BASE_COLUMNS) delete copy[column]
  return copy
}

/** Turns Date values into ISO 8601 UTC strings. */
export function serialize<T>(row: LooseRow): Row<T> {
  const out: LooseRow = {}
  for (const key in row) {
    const value = row[key]
    out[key] = value instanceof Date ? value.toISOString() : value
  }
  return out as Row<T>
}
