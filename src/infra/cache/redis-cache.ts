import type { Redis } from 'ioredis'
import { toUnavailableError } from '../redis/redis-errors.ts'
import { defineScript } from '../redis/redis-script.ts'
import type { Cache } from './cache.ts'
import {
  checkIncrement,
  checkIndexes,
  decodeJson,
  encodeJson,
  expireToMs,
  ttlToMs,
} from './cache-values.ts'

export interface RedisCacheOptions {
  /** A connection from `createRedis`; the cache uses it but does not own it. */
  redis: Redis
  /** Every key is stored as `${prefix}:${key}` (APP_NAME). */
  prefix: string
}

/**
 * INCRBY and, only when this call created the key, PEXPIRE: in one script, so a crash or a lost
 * connection between the two cannot leave a counter without its TTL (a rate-limit window that
 * never ends).
 */
const incrementWithTtl = defineScript(`
local isNew = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if isNew then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
`)

/**
 * The distributed-mode cache on ioredis. Each member is one round trip: SET with PX instead of
 * SET then EXPIRE, multi-field HSET, HDEL and DEL, a Lua script for increment-with-TTL.
 * Connection failures reject as AppError 'unavailable' / CACHE_UNAVAILABLE (at once while Redis is
 * down, given a connection from `createRedis`), so callers can fall back to the database; errors
 * the server answers (WRONGTYPE) pass through unchanged, as they are bugs. `close()` leaves the
 * connection open: its owner (the container) closes it.
 */
export function createRedisCache({ redis, prefix }: RedisCacheOptions): Cache {
  const full = (key: string) => `${prefix}:${key}`

  const guard = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await command()
    } catch (error) {
      throw toUnavailableError(error, 'CACHE_UNAVAILABLE', 'the cache')
    }
  }

  const cache: Cache = {
    async get(key) {
      return guard(async () => (await redis.get(full(key))) ?? undefined)
    },
    async set(key, value, ttlSeconds) {
      const ms = ttlSeconds === undefined ? undefined : ttlToMs(ttlSeconds)
      await guard(() =>
        ms === undefined ? redis.set(full(key), value) : redis.set(full(key), value, 'PX', ms),
      )
    },
    async getJson<T>(key: string) {
      return decodeJson<T>(await cache.get(key))
    },
    async setJson(key, value, ttlSeconds) {
      await cache.set(key, encodeJson(value), ttlSeconds)
    },
    async delete(...keys) {
      if (keys.length === 0) return 0
      return guard(() => redis.del(...keys.map(full)))
    },
    async expire(key, ttlSeconds) {
      const ms = expireToMs(ttlSeconds)
      return guard(async () => (await redis.pexpire(full(key), ms)) === 1)
    },
    async exists(key) {
      return guard(async () => (await redis.exists(full(key))) === 1)
    },
    async ttl(key) {
      return guard(() => redis.ttl(full(key)))
    },

    async hashSet(key, fields) {
      if (Object.keys(fields).length === 0) return
      await guard(() => redis.hset(full(key), fields))
    },
    async hashGet(key, field) {
      return guard(async () => (await redis.hget(full(key), field)) ?? undefined)
    },
    async hashGetAll(key) {
      return guard(() => redis.hgetall(full(key)))
    },
    async hashDelete(key, ...fields) {
      if (fields.length === 0) return 0
      return guard(() => redis.hdel(full(key), ...fields))
    },

    async listPush(key, values, side = 'right') {
      if (values.length === 0) return guard(() => redis.llen(full(key)))
      return guard(() =>
        side === 'left' ? redis.lpush(full(key), ...values) : redis.rpush(full(key), ...values),
      )
    },
    async listRange(key, start, stop) {
      checkIndexes(start, stop)
      return guard(() => redis.lrange(full(key), start, stop))
    },
    async listPop(key, side = 'right') {
      return guard(
        async () =>
          (side === 'left' ? await redis.lpop(full(key)) : await redis.rpop(full(key))) ??
          undefined,
      )
    },

    async increment(key, by = 1, ttlSeconds) {
      checkIncrement(by)
      if (ttlSeconds === undefined) return guard(() => redis.incrby(full(key), by))
      const ms = ttlToMs(ttlSeconds)
      return guard(async () => Number(await incrementWithTtl.run(redis, [full(key)], [by, ms])))
    },

    async ping() {
      await guard(() => redis.ping())
    },
    async close() {},
  }
  return cache
}
