import cluster from 'node:cluster'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { setImmediate as endOfTurn, setTimeout as sleep } from 'node:timers/promises'
import { type Config, ConfigError } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import { createServer } from '../http/server.ts'
import { SHUTDOWN_MESSAGE, serveCluster } from './cluster.ts'

/** How often connections that turned idle while closing are closed. */
const IDLE_SWEEP_MS = 100

/** Options the command line may set over the config. */
export interface ServeOptions {
  host?: string
  port?: number
  /** Worker processes (`--workers`); 0 = one per CPU core. Default: WEB_WORKERS. */
  workers?: number
}

/**
 * Serves HTTP until SIGTERM or SIGINT, then drains: /ready turns 503, a pause lets load balancers
 * notice, the server stops accepting and lets in-flight requests finish within the grace period,
 * and the container closes everything in reverse. Resolves to the exit code.
 *
 * With more than one worker this process becomes the cluster primary (see cluster.ts), and each
 * worker it starts runs this same function as a plain server.
 */
export async function serve(config: Readonly<Config>, options: ServeOptions = {}): Promise<number> {
  const workers = workerCount(config, options.workers)
  if (cluster.isPrimary && workers > 1) {
    if (config.REDIS_URL === undefined) {
      throw new ConfigError(
        `${workers} workers need REDIS_URL: in embedded mode sessions, the cache, rate limits, pub/sub and tasks live in each process's memory, so workers would disagree (a logout on one would not reach the others); set REDIS_URL or serve with one worker`,
      )
    }
    return serveCluster(config, { ...options, workers })
  }

  const container = await createContainer(config)
  const log = container.logger.system
  const app = await createServer(container).catch(async (error: unknown) => {
    await container.close()
    throw error
  })
  await app.listen({ host: options.host ?? config.HOST, port: options.port ?? config.PORT })
  const address = app.server.address()
  const scheme = config.TLS_CERT_FILE ? 'https' : 'http'
  log.info({ address, env: config.APP_ENV }, `listening on ${scheme}://${formatAddress(address)}`)

  const reason = await shutdownRequested()
  log.info({ reason }, 'shutting down: draining')
  container.readiness.startDraining()
  // Requests that reached the socket buffers with the signal are read in this turn of the event
  // loop: they are in flight, so let the turn finish before closing answers new requests 503.
  await endOfTurn()
  if (config.SHUTDOWN_DELAY_MS > 0) await sleep(config.SHUTDOWN_DELAY_MS)

  let isForced = false
  const deadline = setTimeout(() => {
    isForced = true
    log.warn({ graceMs: config.SHUTDOWN_GRACE_MS }, 'grace period over: closing open connections')
    app.server.closeAllConnections()
  }, config.SHUTDOWN_GRACE_MS)
  // close() closes the connections idle at that moment; a keep-alive connection whose request
  // began before draining (so its answer did not say Connection: close) turns idle later and
  // would hold the close open until the deadline. Sweep those as they come. (The plain HTTP
  // server sweeps by itself and closes a connection only once it is quiet: node-server.ts.)
  const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS)
  await app.close()
  clearInterval(sweep)
  clearTimeout(deadline)
  log.info({ isForced }, 'HTTP closed')
  await container.close()
  return isForced ? 1 : 0
}

/**
 * `--workers`, else WEB_WORKERS, else one per CPU core in distributed prod (REDIS_URL set) and
 * 1 otherwise; 0 means one per core.
 */
export function workerCount(
  config: Pick<Config, 'WEB_WORKERS' | 'APP_ENV' | 'REDIS_URL'>,
  given?: number,
): number {
  const isDistributedProd = config.APP_ENV === 'prod' && config.REDIS_URL !== undefined
  const count = given ?? config.WEB_WORKERS ?? (isDistributedProd ? 0 : 1)
  return count === 0 ? availableParallelism() : count
}

/**
 * Resolves on SIGTERM or SIGINT, or in a cluster worker when the primary says so. A second
 * signal to a lone server means "now": the operator has run out of patience. A cluster worker
 * ignores further signals instead (a Ctrl-C reaches the primary and every worker at once);
 * the primary enforces the deadline.
 */
async function shutdownRequested(): Promise<string> {
  const stop = new AbortController()
  const { signal } = stop
  const triggers = [
    once(process, 'SIGTERM', { signal }).then(() => 'SIGTERM'),
    once(process, 'SIGINT', { signal }).then(() => 'SIGINT'),
  ]
  if (cluster.isWorker) {
    triggers.push(
      new Promise<string>((resolve) => {
        const onMessage = (message: { type?: unknown }) => {
          if (message?.type !== SHUTDOWN_MESSAGE) return
          process.off('message', onMessage)
          resolve('primary')
        }
        process.on('message', onMessage)
        signal.addEventListener('abort', () => process.off('message', onMessage))
      }),
    )
  }
  const reason = await Promise.race(triggers.map((trigger) => trigger.catch(() => 'aborted')))
  stop.abort()
  if (cluster.isWorker) {
    process.on('SIGINT', () => undefined)
    process.on('SIGTERM', () => undefined)
  } else {
    process.once('SIGINT', () => process.exit(130))
    process.once('SIGTERM', () => process.exit(143))
  }
  return reason
}

function formatAddress(address: ReturnType<import('node:net').Server['address']>): string {
  if (address === null || typeof address === 'string') return String(address)
  return address.family === 'IPv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`
}
