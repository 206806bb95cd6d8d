import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'

type Counted = (error: Error | null, result?: { current: number; ttl: number }) => void

/** Adds ARGV[2] hits to a counter; a new counter (its count is the hits) starts its window. */
const INCREMENT = `
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
if current == tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {current, tonumber(ARGV[1])}
end
return {current, redis.call('PTTL', KEYS[1])}
`

/** What the plugin passes to a store: its merged options, with the route for a route's own. */
interface StoreOptions {
  continueExceeding?: boolean
  exponentialBackoff?: boolean
  routeInfo?: { method?: string; url?: string }
}

interface Counter {
  /** Hits waiting for the call in flight to answer, in arrival order. */
  waiting: Counted[]
}

type CountingRedis = Redis & {
  servekitRateLimitBy(
    key: string,
    windowMs: number,
    hits: number,
    callback: (error: Error | null, result?: [number, number]) => void,
  ): void
}

/**
 * A Redis store for @fastify/rate-limit that sends at most one call per counter at a time.
 * Hits on a counter that arrive while its call is in flight wait for it and then go together
 * as one INCRBY; each hit gets the count it would have had alone (the n-th of a batch that
 * brought the counter to c gets c − size + n). So the limits stay exact across replicas,
 * a lone request costs one round trip as before, and under load all of a client's requests
 * of one event-loop turn cost one Redis command instead of one each.
 *
 * The library's own RedisStore sends an EVALSHA per request; this one keeps its key names and
 * its answers (without continueExceeding and exponentialBackoff, which servekit does not use).
 */
export function batchedRedisStore(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  const counting = redis as CountingRedis
  if (typeof counting.servekitRateLimitBy !== 'function')
    redis.defineCommand('servekitRateLimitBy', { numberOfKeys: 1, lua: INCREMENT })

  class BatchedRedisStore implements FastifyRateLimitStore {
    readonly #counters = new Map<string, Counter>()
    readonly prefix: string

    constructor(options: StoreOptions, prefix = nameSpace) {
      this.prefix = prefix
      if (options.continueExceeding || options.exponentialBackoff)
        throw new Error(
          'the batched rate-limit store supports neither continueExceeding nor exponentialBackoff',
        )
    }

    incr(key: string, counted: Counted, timeWindow: number): void {
      const name = this.prefix + key
      const counter = this.#counters.get(name)
      if (counter) {
        counter.waiting.push(counted)
        return
      }
      this.#send(name, [counted], timeWindow)
    }

    #send(name: string, batch: Counted[], windowMs: number): void {
      const counter: Counter = { waiting: [] }
      this.#counters.set(name, counter)
      counting.servekitRateLimitBy(name, windowMs, batch.length, (error, result) => {
        // The counter moves on before anyone is told, so no answer can leave it stuck.
        this.#counters.delete(name)
        if (counter.waiting.length > 0) this.#send(name, counter.waiting, windowMs)
        if (error || !result) for (const counted of batch) counted(error ?? new Error('no reply'))
        else {
          const [current, ttl] = result
          const first = current - batch.length + 1
          for (let i = 0; i < batch.length; i++) batch[i]?.(null, { current: first + i, ttl })
        }
      })
    }

    /** Typed as taking the route; it gets the merged options (which carry the route). */
    child(options: object): FastifyRateLimitStore {
      const merged = options as StoreOptions
      const route = merged.routeInfo ?? {}
      // The same key names as the library's RedisStore.child.
      return new BatchedRedisStore(merged, `${this.prefix}${route.method}${route.url}-`)
    }
  }
  return BatchedRedisStore as unknown as FastifyRateLimitStoreCtor
}
