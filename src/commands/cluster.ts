import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import type { Config } from '../config/index.ts'
import { ConfigError } from '../config/index.ts'
import { createDatabase, migrateToLatest } from '../infra/db/index.ts'
import { createLoggers } from '../infra/logger/index.ts'
import { serveClusterMetrics } from '../infra/metrics/index.ts'
import { isWorkerIdPinned, workerIdFrom } from '../shared/ids/index.ts'

/** The primary's IPC message that tells a worker to drain and exit (as SIGTERM would). */
export const SHUTDOWN_MESSAGE = 'servekit:shutdown'

const MAX_WORKER_ID = 1023
/** Crashes further apart than this do not add up towards a longer restart delay. */
const CRASH_WINDOW_MS = 60_000
const MAX_RESTART_DELAY_MS = 30_000
/** Time for closing after the drain, beyond SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS. */
const CLOSE_MARGIN_MS = 5000

export interface ClusterOptions {
  workers: number
  host?: string
  port?: number
}

interface Slot {
  /** 1..N, kept by the worker that replaces a dead one (CLUSTER_WORKER_SLOT). */
  number: number
  workerId: number | undefined
  worker: Worker | undefined
  isListening: boolean
  crashes: number[]
  restart: NodeJS.Timeout | undefined
}

/**
 * `serve --workers N`, the role of `uvicorn --workers`: this process becomes a node:cluster
 * primary that serves nothing itself. It starts N workers that share the listening port (the
 * primary hands connections out in turn), each running the ordinary `serve` with its own
 * snowflake worker id, and:
 *
 * - restarts a worker that dies, at once the first time and then with a delay doubling per crash
 *   within a minute (up to 30 s), so a crash loop does not spin; a worker that dies before any
 *   worker ever listened fails the start instead (exit 1), as a lone server would;
 * - on SIGTERM or SIGINT tells every worker to drain (each runs the usual graceful shutdown:
 *   /ready 503, SHUTDOWN_DELAY_MS, drain within SHUTDOWN_GRACE_MS, close) and exits 0 once all
 *   have exited 0; a worker still running after delay + grace + 5 s is killed (exit 1);
 *   a second signal kills them all at once;
 * - answers the workers' metrics scrapes with the sum over all of them (cluster-metrics.ts).
 *
 * Worker ids: when the id may be leased (Redis configured, no WORKER_ID or pod ordinal), each
 * worker leases its own; otherwise worker k of N gets base + k, base being WORKER_ID (or the pod
 * ordinal, or 0), so processes started with `--workers N` need ids N apart. Embedded (SQLite)
 * mode migrates once here, before any worker starts, so workers never race on the schema.
 */
export async function serveCluster(
  config: Readonly<Config>,
  options: ClusterOptions,
): Promise<number> {
  const isLeasing = config.REDIS_URL !== undefined && !isWorkerIdPinned(config)
  const baseId = workerIdFrom(config)
  if (!isLeasing && baseId + options.workers > MAX_WORKER_ID) {
    throw new ConfigError(
      `WORKER_ID=${baseId} is invalid with ${options.workers} workers: expected WORKER_ID + workers ≤ ${MAX_WORKER_ID}`,
    )
  }
  const loggers = createLoggers(config)
  const log = loggers.system.child({ role: 'primary' })
  // The primary logs rarely and each line matters (a crash, a restart): write each out at once.
  const tell = (fields: object, message: string, level: 'info' | 'warn' | 'error' = 'info') => {
    log[level](fields, message)
    log.flush()
  }

  try {
    await migrateEmbeddedDatabase(config, loggers.system)
  } catch (error) {
    await loggers.close()
    throw error
  }

  const slots: Slot[] = Array.from({ length: options.workers }, (_, index) => ({
    number: index + 1,
    workerId: isLeasing ? undefined : baseId + index + 1,
    worker: undefined,
    isListening: false,
    crashes: [],
    restart: undefined,
  }))
  const slotOf = new Map<Worker, Slot>()
  let hasListened = false
  let isStopping = false
  let hasFailedStart = false
  const exitCodes: Array<number | string> = []

  const fork = (slot: Slot) => {
    slot.restart = undefined
    const env: Record<string, string> = { CLUSTER_WORKER_SLOT: String(slot.number) }
    if (slot.workerId !== undefined) env.WORKER_ID = String(slot.workerId)
    const worker = cluster.fork(env)
    slot.worker = worker
    slot.isListening = false
    slotOf.set(worker, slot)
    worker.once('listening', () => {
      slot.isListening = true
      hasListened = true
      tell(
        { slot: slot.number, worker_pid: worker.process.pid, worker_id: slot.workerId },
        'worker listening',
      )
    })
  }

  const allExited = new Promise<void>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      const slot = slotOf.get(worker)
      slotOf.delete(worker)
      if (!slot || slot.worker !== worker) return
      slot.worker = undefined
      slot.isListening = false
      const status = code ?? signal
      if (isStopping || hasFailedStart) {
        exitCodes.push(status)
        if (slots.every((each) => each.worker === undefined)) resolve()
        return
      }
      if (!hasListened) {
        // Nothing ever served: a start-up failure (database down, port taken) to report, not
        // a crash to retry forever.
        hasFailedStart = true
        exitCodes.push(status)
        tell(
          { slot: slot.number, worker_pid: worker.process.pid, status },
          'worker failed to start',
          'error',
        )
        stopAll('SIGTERM')
        if (slots.every((each) => each.worker === undefined)) resolve()
        return
      }
      const now = Date.now()
      slot.crashes = slot.crashes.filter((at) => now - at < CRASH_WINDOW_MS)
      slot.crashes.push(now)
      const delayMs = restartDelayMs(slot.crashes.length)
      tell(
        { slot: slot.number, worker_pid: worker.process.pid, status, restartInMs: delayMs },
        'worker died: restarting it',
        'error',
      )
      slot.restart = setTimeout(() => fork(slot), delayMs)
    })
  })

  serveClusterMetrics(
    () => slots.flatMap((slot) => (slot.worker && slot.isListening ? [slot.worker] : [])),
    (listener) => cluster.on('message', listener),
  )

  const stopAll = (signal: NodeJS.Signals) => {
    for (const slot of slots) {
      clearTimeout(slot.restart)
      slot.restart = undefined
      const worker = slot.worker
      if (!worker) continue
      // A listening worker drains on the message; one still starting has no handler yet and
      // simply stops.
      if (slot.isListening && worker.isConnected()) {
        worker.send({ type: SHUTDOWN_MESSAGE }, undefined, () => undefined)
      } else {
        worker.process.kill(signal)
      }
    }
  }

  for (const slot of slots) fork(slot)
  tell(
    { workers: options.workers, worker_ids: isLeasing ? 'leased' : 'assigned' },
    `cluster primary started ${options.workers} workers`,
  )

  const signals = new AbortController()
  const signal = await Promise.race([
    once(process, 'SIGTERM', { signal: signals.signal }).then(() => 'SIGTERM' as const),
    once(process, 'SIGINT', { signal: signals.signal }).then(() => 'SIGINT' as const),
    allExited.then(() => undefined),
  ])
  signals.abort()

  let isForced = false
  if (signal !== undefined) {
    isStopping = true
    const killAll = () => {
      for (const slot of slots) slot.worker?.process.kill('SIGKILL')
    }
    process.once('SIGINT', () => {
      killAll()
      process.exit(130)
    })
    process.once('SIGTERM', () => {
      killAll()
      process.exit(143)
    })
    tell({ signal }, 'shutting down: draining every worker')
    stopAll(signal)
    const deadline = setTimeout(
      () => {
        isForced = true
        tell({}, 'workers still running after the grace period: killing them', 'warn')
        killAll()
      },
      config.SHUTDOWN_DELAY_MS + config.SHUTDOWN_GRACE_MS + CLOSE_MARGIN_MS,
    )
    if (slots.some((slot) => slot.worker !== undefined)) await allExited
    clearTimeout(deadline)
  }
  const isClean = !isForced && !hasFailedStart && exitCodes.every((code) => code === 0)
  tell({ exitCodes }, 'cluster stopped')
  await loggers.close()
  return isClean ? 0 : 1
}

/**
 * How long to wait before restarting a worker that has crashed `crashes` times within the last
 * minute: at once the first time, then 0.5 s, 1 s, 2 s, … up to 30 s.
 */
export function restartDelayMs(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** (crashes - 2))
}

/** SQLite: apply pending migrations once, before the workers open the file. */
async function migrateEmbeddedDatabase(
  config: Readonly<Config>,
  logger: Parameters<typeof createDatabase>[1],
): Promise<void> {
  if (!config.DATABASE_URL.startsWith('sqlite:')) return
  const database = createDatabase(config, logger)
  try {
    const applied = await migrateToLatest(database)
    if (applied.length > 0) logger.info({ applied }, 'database migrated')
  } finally {
    await database.close()
  }
}
