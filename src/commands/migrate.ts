import type { Writable } from 'node:stream'
import type { Config } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import { MigrationError, migrateDown, migrateToLatest, migrationStatus } from '../infra/db/index.ts'

export type MigrateAction = 'up' | 'down' | 'status'

export interface MigrateOptions {
  /** With `down`: revert every applied step instead of the last one. */
  all?: boolean
  /** Where the report goes; the terminal by default. */
  out?: Writable
}

/**
 * `migrate up` applies every pending step, `down` reverts the last (or, with --all, every) step,
 * `status` lists each step with when it was applied. Resolves to the exit code: a failed step
 * is named on stderr with what state the schema is in, and the code is 1.
 */
export async function migrate(
  config: Readonly<Config>,
  action: MigrateAction,
  options: MigrateOptions = {},
): Promise<number> {
  const out = options.out ?? process.stdout
  const container = await createContainer(config, { isMigratingAtStart: false })
  const { db } = container
  const log = container.logger.system
  try {
    if (action === 'status') {
      const steps = await migrationStatus(db)
      for (const step of steps) {
        out.write(
          `${step.appliedAt ? 'applied' : 'pending'}  ${step.name}${step.appliedAt ? `  ${step.appliedAt}` : ''}\n`,
        )
      }
      const applied = steps.filter((step) => step.appliedAt).length
      out.write(`${db.dialect}: ${applied} of ${steps.length} steps applied\n`)
      return 0
    }
    const names =
      action === 'up' ? await migrateToLatest(db) : await migrateDown(db, { all: options.all })
    const verb = action === 'up' ? 'applied' : 'reverted'
    for (const name of names) out.write(`${verb}  ${name}\n`)
    out.write(
      `${db.dialect}: ${names.length === 0 ? 'nothing to do' : `${names.length} ${names.length === 1 ? 'step' : 'steps'} ${verb}`}\n`,
    )
    log.info({ action, steps: names }, `migrate ${action} done`)
    return 0
  } catch (error) {
    if (!(error instanceof MigrationError)) throw error
    log.error({ err: error.cause, step: error.failedStep }, error.message)
    process.stderr.write(`migrate ${action} failed: ${error.message}\n`)
    return 1
  } finally {
    await container.close()
  }
}
