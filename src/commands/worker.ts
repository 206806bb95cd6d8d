import type { Config } from '../config/index.ts'
import { ConfigError } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import { serveMetrics } from '../infra/metrics/index.ts'
import { shutdownSignal } from './shutdown-signal.ts'

/**
 * `worker`: runs every task (orders and the number tasks) from BullMQ at WORKER_CONCURRENCY,
 * with the order outbox sweep, until SIGTERM or SIGINT; then it stops taking tasks, lets the
 * running ones finish within SHUTDOWN_GRACE_MS (past it they are abandoned and another worker
 * runs them again), closes everything and resolves to 0. Any number of workers may run.
 */
export async function worker(config: Readonly<Config>): Promise<number> {
  requireRedis(config, 'worker')
  const container = await createContainer(config, { runsEmbeddedWorkers: false })
  const log = container.logger.system
  const metricsServer =
    config.METRICS_PORT === undefined
      ? undefined
      : await serveMetrics(container.metrics, config.HOST, config.METRICS_PORT)
  if (metricsServer) log.info({ port: metricsServer.port }, 'metrics served at /metrics')
  try {
    const running = await container.background.startWorker({
      // The lifecycle hooks: the database pool and Redis connect lazily, so connect them before
      // the first task (a bad DATABASE_URL fails here, not inside every task).
      onStart: async () => {
        await container.db.ping()
        await container.cache.ping()
      },
      onStop: () => log.info('worker drained: closing the database and Redis'),
    })
    // JSON logs are buffered; that the worker is up should show at once.
    log.flush()
    const signal = await shutdownSignal()
    log.info(
      { signal, graceMs: config.SHUTDOWN_GRACE_MS },
      'shutting down: letting running tasks finish',
    )
    await running.close()
    return 0
  } finally {
    await metricsServer?.close()
    await container.close()
  }
}

/** The worker and scheduler commands serve distributed mode only; say so in one line. */
export function requireRedis(config: Readonly<Config>, command: string): void {
  if (config.REDIS_URL) return
  throw new ConfigError(
    `the ${command} command needs REDIS_URL (redis://host:6379/0): without it, serve runs tasks and schedules itself`,
  )
}
