import { AppError } from '../../shared/errors.ts'

/**
 * Mutual exclusion across processes (Redis) or within one (memory), with a lease.
 *
 * Limits, which every caller must design for (see README.md in this folder):
 * - A lock is a lease, not ownership. It expires after `ttlMs` whether or not the holder is done:
 *   a GC pause, a slow query or a lost connection longer than the TTL lets a second holder in
 *   while the first still runs. `extend()` narrows the gap; nothing closes it.
 * - Release and extend act only for the holder (compare-and-delete / compare-and-pexpire on the
 *   token), so a late holder cannot free or prolong its successor's lock, but it also cannot
 *   undo what it wrote meanwhile. There is no fencing token the database could check.
 * - Hence correctness must never rest on the lock alone. Stock must be deducted by a conditional
 *   update (`UPDATE items SET stock = stock - ? WHERE id = ? AND stock >= ?`, rejecting the order
 *   when no row changed): the lock only keeps workers from contending; the database keeps the
 *   invariant.
 * - One Redis node, no Redlock: if that node loses the key (failover to a replica that had not
 *   seen it, a restart without persistence) two holders can coexist.
 * - Waiting is polling with jitter, not a queue: no FIFO order, and a waiter can lose every
 *   round to newcomers until its wait bound passes.
 */
export interface LockManager {
  /**
   * Tries to take `key` until `waitMs` has passed. Resolves to the held lock, or `undefined` when
   * the wait bound passed. Rejects with AppError LOCK_UNAVAILABLE when the lock store is down.
   */
  acquire(key: string, options: LockOptions): Promise<Lock | undefined>
  /**
   * Runs `fn` holding `key` and always releases afterwards. Rejects with AppError
   * LOCK_NOT_ACQUIRED (kind 'conflict') when the wait bound passes, and with LOCK_UNAVAILABLE
   * when the lock store is down.
   */
  withLock<T>(key: string, options: LockOptions, fn: (lock: Lock) => Promise<T>): Promise<T>
}

export interface LockOptions {
  /** Lease length: the lock frees itself this long after acquisition (or the last extend). */
  ttlMs: number
  /** How long to keep trying; 0 (the default) tries once. */
  waitMs?: number
  /** Pause between tries, jittered ±50 % so waiters spread out. Default 50. */
  retryMs?: number
}

export interface Lock {
  readonly key: string
  /** Random and unique to this acquisition: proves who holds the lock. */
  readonly token: string
  /** Frees the lock if this acquisition still holds it; false if it had expired or passed on. */
  release(): Promise<boolean>
  /** Resets the lease to `ttlMs` from now if still held; false if it had already been lost. */
  extend(ttlMs: number): Promise<boolean>
}

/** Where a lock manager reports a lease that ran out before its work was done. */
export interface LockLogger {
  warn(object: object, message: string): void
}

export const LOCK_NOT_ACQUIRED = 'LOCK_NOT_ACQUIRED'
export const LOCK_UNAVAILABLE = 'LOCK_UNAVAILABLE'

/** One try: the lock, or `undefined` when someone else holds it. */
export type TryAcquire = (key: string, ttlMs: number) => Promise<Lock | undefined>

/** Lease lengths are whole milliseconds, as PX takes them. */
export function checkTtlMs(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1)
    throw new RangeError(`ttlMs must be a positive integer, got ${ttlMs}`)
  return ttlMs
}

export function checkLockOptions(options: LockOptions): Required<LockOptions> {
  const { ttlMs, waitMs = 0, retryMs = 50 } = options
  checkTtlMs(ttlMs)
  if (!Number.isFinite(waitMs) || waitMs < 0)
    throw new RangeError(`waitMs must be zero or more, got ${waitMs}`)
  if (!Number.isFinite(retryMs) || retryMs <= 0)
    throw new RangeError(`retryMs must be positive, got ${retryMs}`)
  return { ttlMs, waitMs, retryMs }
}

/**
 * The wait loop both implementations share: try, then sleep a jittered `retryMs` (never past
 * the deadline), until the lock is won or the last try at the deadline fails.
 */
export async function acquireWithin(
  tryAcquire: TryAcquire,
  key: string,
  options: LockOptions,
): Promise<Lock | undefined> {
  const { ttlMs, waitMs, retryMs } = checkLockOptions(options)
  const deadline = performance.now() + waitMs
  for (;;) {
    const lock = await tryAcquire(key, ttlMs)
    if (lock) return lock
    const remainingMs = deadline - performance.now()
    if (remainingMs <= 0) return undefined
    const pauseMs = Math.min(remainingMs, retryMs * (0.5 + Math.random()))
    await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
}

/** `withLock` for any manager: acquire, run, release in `finally`. */
export async function runWithLock<T>(
  manager: Pick<LockManager, 'acquire'>,
  key: string,
  options: LockOptions,
  fn: (lock: Lock) => Promise<T>,
  logger?: LockLogger,
): Promise<T> {
  const lock = await manager.acquire(key, options)
  if (!lock) {
    throw new AppError(
      'conflict',
      LOCK_NOT_ACQUIRED,
      'The resource is busy with another operation; try again shortly',
      { details: { key, waitMs: options.waitMs ?? 0 } },
    )
  }
  const startedAt = performance.now()
  try {
    return await fn(lock)
  } finally {
    // A failed release is not the caller's failure: fn's outcome stands and the lease expires
    // on its own. It is logged, as is a lease that ran out mid-work (exclusion was lost).
    try {
      if (!(await lock.release()))
        logger?.warn(
          { key, ttlMs: options.ttlMs, heldMs: Math.round(performance.now() - startedAt) },
          'lock expired before its work finished; another holder may have run concurrently',
        )
    } catch (error) {
      logger?.warn({ key, err: error }, 'lock release failed; it will expire on its own')
    }
  }
}
