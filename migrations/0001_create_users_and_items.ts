import type { Kysely } from 'kysely'
import { schemaKit } from '../src/infra/db/migration-helpers.ts'

/** Users (the accounts that log in) and items (the catalogue), with the base model fields. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const kit = schemaKit(db)

  await kit
    .table(db.schema.createTable('users'))
    .addColumn('id', 'bigint', (column) => column.primaryKey())
    .addColumn('username', 'varchar(64)', (column) => column.notNull())
    .addColumn('password_hash', 'varchar(255)', (column) => column.notNull())
    .$call(kit.baseColumns)
    .addUniqueConstraint('users_username_key', ['username'])
    .execute()

  await kit
    .table(db.schema.createTable('items'))
    .addColumn('id', 'bigint', (column) => column.primaryKey())
    .addColumn('name', 'varchar(255)', (column) => column.notNull())
    .addColumn('price', kit.money, (column) => column.notNull())
    .addColumn('description', 'text')
    .addColumn('stock', 'integer', (column) => column.notNull().defaultTo(0))
    .$call(kit.baseColumns)
    .execute()
  // The public list reads live rows newest first: WHERE deleted_at IS NULL ORDER BY id DESC.
  await db.schema
    .createIndex('items_deleted_at_id_idx')
    .on('items')
    .columns(['deleted_at', 'id'])
    .execute()
  await db.schema.createIndex('items_creator_id_idx').on('items').column('creator_id').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('items').execute()
  await db.schema.dropTable('users').execute()
}
