import type { Config } from '../config/index.ts'
import { createLoggers, type Loggers } from '../infra/logger/index.ts'
import { Readiness } from './readiness.ts'

/** Something the container opened and must close at shutdown. */
interface Owned {
  name: string
  close(): Promise<void>
}

/** Everything a command needs, opened in order; `close()` closes it in reverse. */
export interface Container {
  config: Readonly<Config>
  logger: Loggers
  readiness: Readiness
  close(): Promise<void>
}

export interface ContainerOverrides {
  logger?: Loggers
}

/**
 * The one composition root, shared by every command: infrastructure, then repositories, then
 * services. If opening anything fails, what was already opened is closed before the error goes on.
 */
export async function createContainer(
  config: Readonly<Config>,
  overrides: ContainerOverrides = {},
): Promise<Container> {
  const owned: Owned[] = []
  const logger = overrides.logger ?? createLoggers(config)
  const readiness = new Readiness()

  const close = async () => {
    for (const resource of owned.reverse()) {
      try {
        await resource.close()
      } catch (error) {
        logger.system.error({ err: error, resource: resource.name }, 'closing failed')
      }
    }
    owned.length = 0
    await logger.close()
  }

  try {
    // Infrastructure joins here in order (database, cache, queue, pub/sub), each pushing itself
    // onto `owned` and registering its readiness check.
    await Promise.resolve()
  } catch (error) {
    await close()
    throw error
  }

  return { config, logger, readiness, close }
}
