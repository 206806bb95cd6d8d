import type { Cache } from '../cache/index.ts'
import type { Metrics } from './metrics.ts'

/**
 * The same cache, counting its lookups (`get`, `getJson`, `hashGet`) as hits, misses or errors
 * under `cache="<name>"`: `cache_hits_total`, `cache_misses_total`, `cache_errors_total`. Each
 * consumer wraps its own view with its own name, so the hit ratio of the item cache is not
 * mixed with token-store checks. Writes and other calls pass straight through.
 */
export function instrumentCache(cache: Cache, metrics: Metrics, name: string): Cache {
  const labelNames = ['cache'] as const
  const hits = metrics
    .counter({ name: 'cache_hits_total', help: 'Cache lookups that found a value.', labelNames })
    .labels(name)
  const misses = metrics
    .counter({ name: 'cache_misses_total', help: 'Cache lookups that found nothing.', labelNames })
    .labels(name)
  const errors = metrics
    .counter({ name: 'cache_errors_total', help: 'Cache lookups that failed.', labelNames })
    .labels(name)
  const counted = <T>(lookup: Promise<T | undefined>): Promise<T | undefined> =>
    lookup.then(
      (value) => {
        if (value === undefined) misses.inc()
        else hits.inc()
        return value
      },
      (error: unknown) => {
        errors.inc()
        throw error
      },
    )

  return {
    get: (key) => counted(cache.get(key)),
    getJson: <T>(key: string) => counted(cache.getJson<T>(key)),
    hashGet: (key, field) => counted(cache.hashGet(key, field)),
    set: (key, value, ttlSeconds) => cache.set(key, value, ttlSeconds),
    setJson: (key, value, ttlSeconds) => cache.setJson(key, value, ttlSeconds),
    delete: (...keys) => cache.delete(...keys),
    expire: (key, ttlSeconds) => cache.expire(key, ttlSeconds),
    exists: (key) => cache.exists(key),
    ttl: (key) => cache.ttl(key),
    hashSet: (key, fields) => cache.hashSet(key, fields),
    hashGetAll: (key) => cache.hashGetAll(key),
    hashDelete: (key, ...fields) => cache.hashDelete(key, ...fields),
    listPush: (key, values, side) => cache.listPush(key, values, side),
    listRange: (key, start, stop) => cache.listRange(key, start, stop),
    listPop: (key, side) => cache.listPop(key, side),
    increment: (key, by, ttlSeconds) => cache.increment(key, by, ttlSeconds),
    ping: () => cache.ping(),
    close: () => cache.close(),
  }
}
