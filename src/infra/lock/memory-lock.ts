import { randomBytes } from 'node:crypto'
import {
  acquireWithin,
  checkTtlMs,
  type Lock,
  type LockLogger,
  type LockManager,
  runWithLock,
} from './lock.ts'

export interface MemoryLockOptions {
  /** Milliseconds since the epoch; tests pass a clock they move by hand. */
  clock?: { now(): number }
  logger?: LockLogger
}

/** Held locks past which expired ones are pruned on the next acquisition. */
const PRUNE_ABOVE = 1024

/**
 * Locks for embedded mode: exclusion between the async tasks of this one process, with the same
 * lease, token and wait semantics as the Redis locks (the contract suite runs on both).
 */
export function createMemoryLockManager(options: MemoryLockOptions = {}): LockManager {
  const clock = options.clock ?? Date
  const held = new Map<string, { token: string; expiresAt: number }>()

  const holds = (key: string, token: string) => {
    const entry = held.get(key)
    return entry !== undefined && entry.token === token && entry.expiresAt > clock.now()
  }

  const pruneExpired = () => {
    const now = clock.now()
    for (const [key, entry] of held) if (entry.expiresAt <= now) held.delete(key)
  }

  const tryAcquire = async (key: string, ttlMs: number): Promise<Lock | undefined> => {
    if (held.size > PRUNE_ABOVE) pruneExpired()
    const current = held.get(key)
    if (current !== undefined && current.expiresAt > clock.now()) return undefined
    const token = randomBytes(16).toString('base64url')
    held.set(key, { token, expiresAt: clock.now() + ttlMs })
    return {
      key,
      token,
      async release() {
        if (!holds(key, token)) return false
        held.delete(key)
        return true
      },
      async extend(ttlMs) {
        checkTtlMs(ttlMs)
        const entry = held.get(key)
        if (entry === undefined || !holds(key, token)) return false
        entry.expiresAt = clock.now() + ttlMs
        return true
      },
    }
  }

  const manager: LockManager = {
    acquire: (key, lockOptions) => acquireWithin(tryAcquire, key, lockOptions),
    withLock: (key, lockOptions, fn) => runWithLock(manager, key, lockOptions, fn, options.logger),
  }
  return manager
}
