import type { Config } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import { serveMetrics } from '../infra/metrics/index.ts'
import { shutdownSignal } from './shutdown-signal.ts'
import { requireRedis } from './worker.ts'

/**
 * `scheduler`: registers the schedule table as BullMQ job schedulers (idempotent, so any number
 * of replicas may run; each firing still runs once) and removes schedules no longer declared,
 * then waits for SIGTERM or SIGINT and resolves to 0. Workers run the firings.
 */
export async function scheduler(config: Readonly<Config>): Promise<number> {
  requireRedis(config, 'scheduler')
  const container = await createContainer(config, { runsEmbeddedWorkers: false })
  const log = container.logger.system
  const metricsServer =
    config.METRICS_PORT === undefined
      ? undefined
      : await serveMetrics(container.metrics, config.HOST, config.METRICS_PORT)
  if (metricsServer) log.info({ port: metricsServer.port }, 'metrics served at /metrics')
  try {
    const { scheduler: table } = container.background
    await table.start()
    const listed = await table.list()
    log.info(
      {
        schedules: listed.map((schedule) => ({
          id: schedule.id,
          next_run_at: schedule.nextRunAt?.toISOString(),
        })),
      },
      'scheduler started: schedules registered',
    )
    log.flush()
    const signal = await shutdownSignal()
    log.info({ signal }, 'scheduler stopped')
    await table.close()
    return 0
  } finally {
    await metricsServer?.close()
    await container.close()
  }
}
