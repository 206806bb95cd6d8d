import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import { createServer } from '../http/server.ts'

/** Options the command line may set over the config. */
export interface ServeOptions {
  host?: string
  port?: number
}

/**
 * Serves HTTP until SIGTERM or SIGINT, then drains: /ready turns 503, a pause lets load balancers
 * notice, the server stops accepting and lets in-flight requests finish within the grace period,
 * and the container closes everything in reverse. Resolves to the exit code.
 */
export async function serve(config: Readonly<Config>, options: ServeOptions = {}): Promise<number> {
  const container = await createContainer(config)
  const log = container.logger.system
  const app = await createServer(container).catch(async (error: unknown) => {
    await container.close()
    throw error
  })
  await app.listen({ host: options.host ?? config.HOST, port: options.port ?? config.PORT })
  const address = app.server.address()
  log.info({ address, env: config.APP_ENV }, `listening on http://${formatAddress(address)}`)

  const signals = new AbortController()
  const [signal] = await Promise.race([
    once(process, 'SIGTERM', { signal: signals.signal }).then(() => ['SIGTERM']),
    once(process, 'SIGINT', { signal: signals.signal }).then(() => ['SIGINT']),
  ])
  signals.abort()
  // A second signal while draining means "now": the operator has run out of patience.
  process.once('SIGINT', () => process.exit(130))
  process.once('SIGTERM', () => process.exit(143))

  log.info({ signal }, 'shutting down: draining')
  container.readiness.startDraining()
  if (config.SHUTDOWN_DELAY_MS > 0) await sleep(config.SHUTDOWN_DELAY_MS)

  let isForced = false
  const deadline = setTimeout(() => {
    isForced = true
    log.warn({ graceMs: config.SHUTDOWN_GRACE_MS }, 'grace period over: closing open connections')
    app.server.closeAllConnections()
  }, config.SHUTDOWN_GRACE_MS)
  await app.close()
  clearTimeout(deadline)
  log.info({ isForced }, 'HTTP closed')
  await container.close()
  return isForced ? 1 : 0
}

function formatAddress(address: ReturnType<import('node:net').Server['address']>): string {
  if (address === null || typeof address === 'string') return String(address)
  return address.family === 'IPv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`
}
