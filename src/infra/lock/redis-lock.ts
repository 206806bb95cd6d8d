import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { toUnavailableError } from '../redis/redis-errors.ts'
import { defineScript } from '../redis/redis-script.ts'
import {
  acquireWithin,
  checkTtlMs,
  LOCK_UNAVAILABLE,
  type Lock,
  type LockLogger,
  type LockManager,
  runWithLock,
} from './lock.ts'

export interface RedisLockOptions {
  /** A connection from `createRedis`; the manager uses it but does not own it. */
  redis: Redis
  /** Lock keys are `${prefix}:lock:${key}` (prefix: APP_NAME). */
  prefix: string
  logger?: LockLogger
}

/** Deletes the key only if it still holds our token: never someone else's lock. */
const compareAndDelete = defineScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** Resets the lease only if the key still holds our token. */
const compareAndExpire = defineScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/**
 * Locks shared by every process on one Redis: SET NX PX takes the lock with its lease in one
 * atomic command; release and extend are Lua compare-and-act on the token. Limits: see lock.ts.
 */
export function createRedisLockManager({ redis, prefix, logger }: RedisLockOptions): LockManager {
  const guard = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await command()
    } catch (error) {
      throw toUnavailableError(error, LOCK_UNAVAILABLE, 'the lock store')
    }
  }

  const tryAcquire = async (key: string, ttlMs: number): Promise<Lock | undefined> => {
    const storedKey = `${prefix}:lock:${key}`
    const token = randomBytes(16).toString('base64url')
    const reply = await guard(() => redis.set(storedKey, token, 'PX', ttlMs, 'NX'))
    if (reply !== 'OK') return undefined
    return {
      key,
      token,
      release: () =>
        guard(async () => (await compareAndDelete.run(redis, [storedKey], [token])) === 1),
      async extend(newTtlMs) {
        checkTtlMs(newTtlMs)
        return guard(
          async () => (await compareAndExpire.run(redis, [storedKey], [token, newTtlMs])) === 1,
        )
      },
    }
  }

  const manager: LockManager = {
    acquire: (key, options) => acquireWithin(tryAcquire, key, options),
    withLock: (key, options, fn) => runWithLock(manager, key, options, fn, logger),
  }
  return manager
}
