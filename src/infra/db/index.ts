export {
  createDatabase,
  type DatabaseHandle,
  type DatabaseSettings,
  type DialectName,
  dialectOf,
} from './database.ts'
export { isDatabaseUnavailable, isUniqueViolation } from './errors.ts'
export {
  MIGRATIONS_DIR,
  MigrationError,
  type MigrationOptions,
  type MigrationStatus,
  migrateDown,
  migrateToLatest,
  migrationStatus,
} from './migrator.ts'
export {
  type Changes,
  type Condition,
  createRepository,
  type Filters,
  type ListQuery,
  type NewRow,
  type OrderBy,
  type Page,
  type ReadOptions,
  type Repository,
  type RepositoryDeps,
  type Row,
  runInTransaction,
  type TableName,
} from './repository.ts'
export type {
  BaseColumns,
  Database,
  ItemsTable,
  OrderStatus,
  OrdersTable,
  OutboxTable,
  UsersTable,
} from './schema.ts'
