import type { ColumnType, Generated } from 'kysely'

/**
 * The tables as the code sees them; kept in step with migrations/ by hand (the repository
 * contract suite fails when they drift). Kysely checks every query against these types, so a
 * wrong column name or value type fails `tsc`, not production.
 *
 * Representation, the same on SQLite, MySQL/MariaDB and PostgreSQL:
 * - ids are snowflakes in BIGINT columns, read and written as decimal strings;
 * - timestamps are UTC instants, read and written as Date. Stored as TIMESTAMPTZ(3) on
 *   PostgreSQL, DATETIME(3) holding UTC on MySQL (the session time zone is +00:00), and ISO 8601
 *   text on SQLite. Repositories hand them on as ISO 8601 strings (see `Row`).
 */

/** The base model fields every business table carries (the Python service's ModelMixin). */
export interface BaseColumns {
  id: string
  creator_id: string | null
  created_at: Date
  updater_id: string | null
  updated_at: Date
  /** Set by a soft delete; such rows are hidden unless a query asks for them. */
  deleted_at: Date | null
}

export interface UsersTable extends BaseColumns {
  username: string
  password_hash: string
}

export interface ItemsTable extends BaseColumns {
  name: string
  /** NUMERIC(15,2): stored rounded to cents on every dialect; read back as a number. */
  price: number
  description: string | null
  stock: Generated<number>
}

export type OrderStatus = 'pending' | 'completed' | 'rejected'

export interface OrdersTable extends BaseColumns {
  item_id: string
  quantity: number
  status: ColumnType<OrderStatus, OrderStatus | undefined, OrderStatus>
  /** Why an order was rejected. */
  reason: string | null
  /** Unique per creator: a retried POST finds the first order instead of placing a second. */
  idempotency_key: string | null
}

/** Messages written in the same transaction as the change they announce, sent by a job. */
export interface OutboxTable {
  id: string
  topic: string
  /** JSON text. */
  payload: string
  created_at: Date
  sent_at: Date | null
}

export interface Database {
  users: UsersTable
  items: ItemsTable
  orders: OrdersTable
  outbox: OutboxTable
}
