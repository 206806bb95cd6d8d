import {
  type Changes,
  createRepository,
  type NewRow,
  type Repository,
  type RepositoryDeps,
  type Row,
  runInTransaction,
} from '../../infra/db/repository.ts'
import type { ItemsTable } from '../../infra/db/schema.ts'

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
  const insert = (values: NewItem, actorId: string | null = null) =>
    base.insert({ ...values, price: roundToCents(values.price) }, actorId)
  return {
    ...base,
    insert,
    create: insert,
    insertMany: (values, actorId) =>
      base.insertMany(
        values.map((value) => ({ ...value, price: roundToCents(value.price) })),
        actorId,
      ),
    update: (id, changes, actorId, options) =>
      base.update(
        id,
        changes.price === undefined ? changes : { ...changes, price: roundToCents(changes.price) },
        actorId,
        options,
      ),
    transaction: (fn) =>
      runInTransaction(deps.db, (trx) => fn(createItemsRepository({ ...deps, db: trx }))),
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
