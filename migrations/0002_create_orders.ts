import { type Kysely, sql } from 'kysely'
import { oneOf, schemaKit } from '../src/infra/db/migration-helpers.ts'

/** Orders: placed as pending, completed or rejected by a background job that deducts stock. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const kit = schemaKit(db)
  await kit
    .table(db.schema.createTable('orders'))
    .addColumn('id', 'bigint', (column) => column.primaryKey())
    .addColumn('item_id', 'bigint', (column) => column.notNull().references('items.id'))
    .addColumn('quantity', 'integer', (column) => column.notNull())
    .addColumn('status', 'varchar(16)', (column) => column.notNull().defaultTo('pending'))
    .addColumn('reason', 'varchar(255)')
    .addColumn('idempotency_key', 'varchar(64)')
    .$call(kit.baseColumns)
    .addCheckConstraint(
      'orders_status_check',
      oneOf('status', ['pending', 'completed', 'rejected']),
    )
    .addCheckConstraint('orders_quantity_check', sql`quantity > 0`)
    // A retried request with the same key finds the first order (NULL keys never collide).
    .addUniqueConstraint('orders_creator_idempotency_key', ['creator_id', 'idempotency_key'])
    .execute()
  await db.schema.createIndex('orders_item_id_idx').on('orders').column('item_id').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('orders').execute()
}
