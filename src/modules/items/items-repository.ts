import {
  type Changes,
  createRepository,
  type NewRow,
  type Repository,
  type RepositoryDeps,
  type Row,
  runInTransaction,
  serialize,
} from '../../infra/db/repository.ts'
import type { ItemsTable } from '../../infra/db/schema.ts'
import { singleFlight } from '../../shared/single-flight.ts'

export type ItemRow = Row<ItemsTable>
export type NewItem = NewRow<ItemsTable>
export type ItemChanges = Changes<ItemsTable>

export interface ItemsRepository extends Omit<Repository<ItemsTable>, 'transaction'> {
  /** Inserts an item created by `creatorId`. */
  create(values: NewItem, creatorId: string | null): Promise<ItemRow>
  transaction<R>(fn: (items: ItemsRepository) => Promise<R>): Promise<R>
}

/**
 * Items: the catalogue. Prices are rounded to cents before they are written, so every database
 * stores the same value (MySQL and PostgreSQL would round a third decimal, SQLite would keep it).
 */
export function createItemsRepository(deps: RepositoryDeps): ItemsRepository {
  const base = createRepository('items', deps)
  const { db } = deps
  const now = deps.now ?? (() => new Date())
  const supportsReturning = db.getExecutor().adapter.supportsReturning
  const insert = (values: NewItem, actorId: string | null = null) =>
    written(base.insert({ ...values, price: roundToCents(values.price) }, actorId))

  /**
   * Without RETURNING (MySQL), a generic insert reads the row back: a second round trip. An item
   * whose every column is given is inserted as it will be read (id, both times and the cents are
   * set here; DATETIME(3) keeps the milliseconds), so the inserted values are the answer.
   */
  const create = async (values: NewItem, creatorId: string | null) => {
    const { name, description, stock } = values
    const isExact =
      !supportsReturning &&
      stock !== undefined &&
      description !== undefined &&
      name.isWellFormed() &&
      (description === null || description.isWellFormed())
    if (!isExact) return insert(values, creatorId)
    const at = now()
    const row = {
      id: deps.ids.nextId(),
      name,
      price: roundToCents(values.price),
      description,
      stock,
      creator_id: creatorId,
      created_at: at,
      updater_id: creatorId,
      updated_at: at,
      deleted_at: null,
    }
    await written(db.insertInto('items').values(row).execute())
    return serialize<ItemsTable>(row)
  }

  /**
   * The public list: the page's ids from the (deleted_at, id) index alone, then only those rows
   * (a deferred join). A plain OFFSET reads and throws away every full row before the page: five
   * times the database work at page 200. The total is counted once for all the requests that ask
   * while a count is running (see `liveCount`).
   */
  const paginate: ItemsRepository['paginate'] = async (page, limit, query = {}) => {
    if (Object.keys(query).length > 0) return base.paginate(page, limit, query)
    if (!Number.isInteger(page) || page < 1 || !Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`paginate needs page >= 1 and limit >= 1, got ${page} and ${limit}`)
    }
    const ids = db
      .selectFrom('items')
      .select('id')
      .where('deleted_at', 'is', null)
      .orderBy('id', 'desc')
      .limit(limit)
      .offset((page - 1) * limit)
    const [rows, total] = await Promise.all([
      db
        .selectFrom('items')
        .innerJoin(ids.as('page'), 'page.id', 'items.id')
        .selectAll('items')
        .orderBy('items.id', 'desc')
        .execute(),
      liveCount(db, () => base.count()),
    ])
    return { rows: rows.map((row) => serialize<ItemsTable>(row)), total }
  }

  return {
    ...base,
    insert,
    create,
    paginate,
    insertMany: (values, actorId) =>
      written(
        base.insertMany(
          values.map((value) => ({ ...value, price: roundToCents(value.price) })),
          actorId,
        ),
      ),
    update: (id, changes, actorId, options) =>
      written(
        base.update(
          id,
          changes.price === undefined
            ? changes
            : { ...changes, price: roundToCents(changes.price) },
          actorId,
          options,
        ),
      ),
    softDelete: (id, actorId, options) => written(base.softDelete(id, actorId, options)),
    // A new generation once the transaction is over too: its writes are visible only then.
    transaction: (fn) =>
      written(runInTransaction(deps.db, (trx) => fn(createItemsRepository({ ...deps, db: trx })))),
  }
}

/**
 * Counts of live items, shared: a request that asks while a count is running gets that count,
 * so under load the database counts a few times a second instead of once per request. A count
 * never spans a write made through this process: each write, once done, starts a new
 * generation, and a count joins only one of its own generation, so a client that lists after
 * its own create or delete sees it. (A write through another replica may be missed by a count
 * already running when it commits, as it could be by a count a moment older.) Counts are
 * shared per database handle only, and never inside a transaction, which sees its own writes.
 */
const counts = singleFlight<number>()
let writeGeneration = 0
const handleIds = new WeakMap<object, number>()
let nextHandleId = 0

function liveCount(db: RepositoryDeps['db'], count: () => Promise<number>): Promise<number> {
  if (db.isTransaction) return count()
  let handle = handleIds.get(db)
  if (handle === undefined) {
    handle = nextHandleId++
    handleIds.set(db, handle)
  }
  return counts.run(`live:${handle}:${writeGeneration}`, count)
}

async function written<T>(write: Promise<T>): Promise<T> {
  try {
    return await write
  } finally {
    writeGeneration += 1
  }
}

/**
 * Rounds half away from zero at the second decimal, on the number's shortest decimal form (as
 * MySQL and PostgreSQL round the literal they receive): 1.005 becomes 1.01, not 1.00.
 */
export function roundToCents(value: number): number {
  const text = String(Math.abs(value))
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text)
  if (!match) return Math.round(value * 100) / 100
  const [, whole = '0', fraction = ''] = match
  let cents = BigInt(whole + fraction.padEnd(2, '0').slice(0, 2))
  if ((fraction[2] ?? '0') >= '5') cents += 1n
  const rounded = Number(cents) / 100
  return value < 0 ? -rounded : rounded
}
