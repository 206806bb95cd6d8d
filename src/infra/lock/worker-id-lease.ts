import { randomInt } from 'node:crypto'
import type { Lock, LockManager } from './lock.ts'

/** Snowflake worker ids are 10 bits. */
const WORKER_IDS = 1024

export interface WorkerIdLease {
  readonly workerId: number
  /** Gives the id back for another process to take. */
  release(): Promise<void>
}

export interface WorkerIdLeaseOptions {
  /** How long the id stays ours without a renewal; it must outlast a Redis outage. */
  ttlMs?: number
  /** How often the lease is renewed. */
  renewEveryMs?: number
  onLost?: (workerId: number) => void
}

/**
 * Leases a snowflake worker id no other live process holds, so replicas of a Deployment (whose
 * pods have no ordinal) never share one. The lease is a lock per id, renewed in the background.
 * Its limit: should renewals fail for longer than `ttlMs` (Redis unreachable that long), another
 * process may take the same id; `onLost` reports it. Pin WORKER_ID where that matters more.
 */
export async function leaseWorkerId(
  locks: LockManager,
  options: WorkerIdLeaseOptions = {},
): Promise<WorkerIdLease> {
  const ttlMs = options.ttlMs ?? 10 * 60_000
  const renewEveryMs = options.renewEveryMs ?? 30_000
  const start = randomInt(WORKER_IDS)
  for (let offset = 0; offset < WORKER_IDS; offset++) {
    const workerId = (start + offset) % WORKER_IDS
    const lock = await locks.acquire(`snowflake-worker:${workerId}`, { ttlMs })
    if (lock) return keepAlive(lock, workerId, ttlMs, renewEveryMs, options.onLost)
  }
  throw new Error(`all ${WORKER_IDS} snowflake worker ids are leased; set WORKER_ID`)
}

function keepAlive(
  lock: Lock,
  workerId: number,
  ttlMs: number,
  renewEveryMs: number,
  onLost: ((workerId: number) => void) | undefined,
): WorkerIdLease {
  const timer = setInterval(() => {
    lock.extend(ttlMs).then(
      (isHeld) => {
        if (!isHeld) onLost?.(workerId)
      },
      // Redis unreachable: the lease still runs for the rest of its TTL; try again next time.
      () => undefined,
    )
  }, renewEveryMs)
  timer.unref()
  return {
    workerId,
    async release() {
      clearInterval(timer)
      await lock.release().catch(() => false)
    },
  }
}
