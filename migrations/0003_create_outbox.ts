import type { Kysely } from 'kysely'
import { schemaKit } from '../src/infra/db/migration-helpers.ts'

/**
 * The transactional outbox: a change and the message announcing it commit together; a job sends
 * unsent messages (sent_at IS NULL) in id order and stamps them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const kit = schemaKit(db)
  await kit
    .table(db.schema.createTable('outbox'))
    .addColumn('id', 'bigint', (column) => column.primaryKey())
    .addColumn('topic', 'varchar(128)', (column) => column.notNull())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('created_at', kit.timestamp, (column) => column.notNull())
    .addColumn('sent_at', kit.timestamp)
    .execute()
  await db.schema
    .createIndex('outbox_sent_at_id_idx')
    .on('outbox')
    .columns(['sent_at', 'id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('outbox').execute()
}
