import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  NO_MIGRATIONS,
} from 'kysely'
import type { DatabaseHandle } from './database.ts'
import { liftStatementTimeout } from './server-dialects.ts'

/** The versioned migrations shipped with servekit. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url))

export interface MigrationOptions {
  /** Migrations by name (run in name order); defaults to the files in migrations/. */
  migrations?: Record<string, Migration>
}

/** One step of the schema's history and whether this database has it. */
export interface MigrationStatus {
  name: string
  /** ISO 8601 UTC time the step was applied, or undefined while it is pending. */
  appliedAt: string | undefined
}

/** A migration run that stopped: which step failed, and what is applied now. */
export class MigrationError extends Error {
  override name = 'MigrationError'
  readonly failedStep: string | undefined
  /** Steps of this run that stay applied despite the failure (MySQL only; else none). */
  readonly keptSteps: string[]

  constructor(
    message: string,
    failedStep: string | undefined,
    keptSteps: string[],
    cause: unknown,
  ) {
    super(message, { cause })
    this.failedStep = failedStep
    this.keptSteps = keptSteps
  }
}

/**
 * Applies every pending step and resolves to their names. Replicas starting together migrate
 * once: the run holds a database lock (an advisory lock on PostgreSQL, GET_LOCK on MySQL, the
 * write lock of a BEGIN IMMEDIATE transaction on SQLite) and reads what is applied under it.
 */
export async function migrateToLatest(
  handle: DatabaseHandle,
  options: MigrationOptions = {},
): Promise<string[]> {
  return withMigrator(handle, options, (migrator) => migrator.migrateToLatest())
}

/** Reverts the last applied step, or every step with `all`; resolves to the reverted names. */
export async function migrateDown(
  handle: DatabaseHandle,
  options: MigrationOptions & { all?: boolean } = {},
): Promise<string[]> {
  return withMigrator(handle, options, (migrator) =>
    options.all ? migrator.migrateTo(NO_MIGRATIONS) : migrator.migrateDown(),
  )
}

/** Every known step in order, with when it was applied. */
export async function migrationStatus(
  handle: DatabaseHandle,
  options: MigrationOptions = {},
): Promise<MigrationStatus[]> {
  const migrator = new Migrator({ db: handle.db, provider: providerFor(options) })
  const steps = await migrator.getMigrations()
  return steps.map((step) => ({ name: step.name, appliedAt: step.executedAt?.toISOString() }))
}

async function withMigrator(
  handle: DatabaseHandle,
  options: MigrationOptions,
  run: (migrator: Migrator) => Promise<MigrationResultSet>,
): Promise<string[]> {
  const provider = providerFor(options)
  const { dialect } = handle
  const resultSet =
    dialect === 'sqlite'
      ? await run(new Migrator({ db: handle.db, provider }))
      : // One session for the whole run, with the statement timeout lifted for it: waiting for
        // another replica's lock or altering a big table may outlast a request's query.
        await handle.db.connection().execute(async (session) => {
          const restore = await liftStatementTimeout(session as Kysely<unknown>, dialect)
          try {
            return await run(new Migrator({ db: session, provider }))
          } finally {
            await restore()
          }
        })
  return outcomeOf(resultSet, dialect === 'mysql')
}

function outcomeOf(resultSet: MigrationResultSet, isDdlAutocommit: boolean): string[] {
  const results = resultSet.results ?? []
  if (resultSet.error === undefined) return results.map((result) => result.migrationName)

  const failed = results.find((result) => result.status === 'Error')
  const succeeded = results
    .filter((result) => result.status === 'Success')
    .map((result) => result.migrationName)
  const reason =
    resultSet.error instanceof Error ? resultSet.error.message : String(resultSet.error)
  const what = failed
    ? `migration ${failed.direction.toLowerCase()} "${failed.migrationName}" failed: ${reason}`
    : `migration run failed before any step: ${reason}`
  if (!failed) throw new MigrationError(what, undefined, [], resultSet.error)
  if (!isDdlAutocommit) {
    throw new MigrationError(
      `${what}; the whole run was rolled back, the schema is as it was`,
      failed.migrationName,
      [],
      resultSet.error,
    )
  }
  const kept = succeeded.length > 0 ? `steps kept: ${succeeded.join(', ')}; ` : ''
  throw new MigrationError(
    `${what}; ${kept}MySQL commits each DDL statement, so "${failed.migrationName}" may be partly applied: check its tables, repair, then run again`,
    failed.migrationName,
    succeeded,
    resultSet.error,
  )
}

function providerFor(options: MigrationOptions): MigrationProvider {
  const { migrations } = options
  if (migrations) return { getMigrations: async () => migrations }
  return { getMigrations: () => loadMigrationFiles(MIGRATIONS_DIR) }
}

/** Each `<name>.ts` (or `.js`) in `dir` exporting `up` (and usually `down`), by name. */
async function loadMigrationFiles(dir: string): Promise<Record<string, Migration>> {
  const files = (await readdir(dir))
    .filter((file) => /\.(ts|js)$/.test(file) && !/\.(d|test)\.ts$/.test(file))
    .sort()
  const migrations: Record<string, Migration> = {}
  for (const file of files) {
    const module = (await import(pathToFileURL(join(dir, file)).href)) as Partial<Migration>
    if (typeof module.up !== 'function') throw new Error(`migration ${file} exports no up()`)
    migrations[file.replace(/\.(ts|js)$/, '')] = module as Migration
  }
  return migrations
}
