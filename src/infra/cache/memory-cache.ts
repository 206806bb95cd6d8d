import type { Cache } from './cache.ts'
import {
  checkIncrement,
  checkIndexes,
  decodeJson,
  encodeJson,
  expireToMs,
  ttlToMs,
} from './cache-values.ts'

/** Milliseconds since the epoch; tests pass a clock they move by hand. */
export interface CacheClock {
  now(): number
}

export interface MemoryCacheOptions {
  /** Every key is stored as `${prefix}:${key}` (APP_NAME), as in Redis. */
  prefix: string
  /** Bound on the number of keys; past it the least recently used key goes first. */
  maxEntries: number
  clock?: CacheClock
  /** How often expired keys are swept out without being read. Default 1000 ms. */
  sweepIntervalMs?: number
}

/** The in-process cache, with two extras for diagnostics and tests. */
export interface MemoryCache extends Cache {
  /** Keys held, expired ones not yet swept included. */
  readonly size: number
  /** The stored (prefixed) keys, least recently used first. */
  keys(): string[]
}

type Entry =
  | { type: 'string'; value: string; expiresAt: number | undefined }
  | { type: 'hash'; value: Map<string, string>; expiresAt: number | undefined }
  | { type: 'list'; value: string[]; expiresAt: number | undefined }

type EntryOf<T extends Entry['type']> = Extract<Entry, { type: T }>

/** Redis's own words, so callers see the same message from both implementations. */
const WRONG_TYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'
const NOT_AN_INTEGER = 'ERR value is not an integer or out of range'
/** Entries the sweeper looks at per tick: bounds the pause a sweep can cause. */
const SWEEP_BATCH = 10_000

/**
 * The embedded-mode cache: one process, no network. Same semantics as the Redis cache (the
 * contract suite runs on both): TTLs in seconds, `ttl()` -2/-1, keys deleted when their hash or
 * list empties, WRONGTYPE on a type mismatch, SET clearing a TTL while HSET/push/INCRBY keep it.
 * Expired keys vanish when read and are swept in the background by an unref'd timer, so the
 * cache never keeps a process alive. The bound counts keys, not bytes: size entries accordingly.
 */
export function createMemoryCache(options: MemoryCacheOptions): MemoryCache {
  const { prefix, maxEntries } = options
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
    throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`)
  const clock = options.clock ?? Date
  // A Map iterates in insertion order; re-inserting a key on use keeps it ordered from least to
  // most recently used, so eviction takes the first key.
  const store = new Map<string, Entry>()
  const full = (key: string) => `${prefix}:${key}`

  /** The entry unless it has expired (then it is dropped, as Redis does on access). */
  const peek = (storedKey: string): Entry | undefined => {
    const entry = store.get(storedKey)
    if (entry?.expiresAt !== undefined && entry.expiresAt <= clock.now()) {
      store.delete(storedKey)
      return undefined
    }
    return entry
  }

  /** The live entry of `type`, marked as just used; WRONGTYPE for another type. */
  const use = <T extends Entry['type']>(storedKey: string, type: T): EntryOf<T> | undefined => {
    const entry = peek(storedKey)
    if (entry === undefined) return undefined
    if (entry.type !== type) throw new Error(WRONG_TYPE)
    store.delete(storedKey)
    store.set(storedKey, entry)
    return entry as EntryOf<T>
  }

  const put = (storedKey: string, entry: Entry) => {
    store.delete(storedKey)
    store.set(storedKey, entry)
    while (store.size > maxEntries) {
      const oldest = store.keys().next()
      if (oldest.done) break
      store.delete(oldest.value)
    }
  }

  let sweepCursor: MapIterator<[string, Entry]> | undefined
  const sweep = () => {
    const now = clock.now()
    sweepCursor ??= store.entries()
    for (let seen = 0; seen < SWEEP_BATCH; seen++) {
      const next = sweepCursor.next()
      if (next.done) {
        sweepCursor = undefined
        return
      }
      const [storedKey, entry] = next.value
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) store.delete(storedKey)
    }
  }
  const sweeper = setInterval(sweep, options.sweepIntervalMs ?? 1000)
  sweeper.unref()

  const expiresAt = (ttlSeconds: number | undefined) =>
    ttlSeconds === undefined ? undefined : clock.now() + ttlToMs(ttlSeconds)

  const cache: MemoryCache = {
    get size() {
      return store.size
    },
    keys: () => [...store.keys()],

    async get(key) {
      return use(full(key), 'string')?.value
    },
    async set(key, value, ttlSeconds) {
      put(full(key), { type: 'string', value, expiresAt: expiresAt(ttlSeconds) })
    },
    async getJson<T>(key: string) {
      return decodeJson<T>(await cache.get(key))
    },
    async setJson(key, value, ttlSeconds) {
      await cache.set(key, encodeJson(value), ttlSeconds)
    },
    async delete(...keys) {
      let deleted = 0
      for (const key of new Set(keys)) {
        if (peek(full(key)) !== undefined) deleted++
        store.delete(full(key))
      }
      return deleted
    },
    async expire(key, ttlSeconds) {
      const ms = expireToMs(ttlSeconds)
      const entry = peek(full(key))
      if (entry === undefined) return false
      if (ms === 0) store.delete(full(key))
      else entry.expiresAt = clock.now() + ms
      return true
    },
    async exists(key) {
      return peek(full(key)) !== undefined
    },
    async ttl(key) {
      const entry = peek(full(key))
      if (entry === undefined) return -2
      if (entry.expiresAt === undefined) return -1
      // Redis rounds to the nearest second: (ms + 500) / 1000 in integer arithmetic.
      return Math.floor((entry.expiresAt - clock.now() + 500) / 1000)
    },

    async hashSet(key, fields) {
      const entries = Object.entries(fields)
      if (entries.length === 0) return
      const storedKey = full(key)
      const entry = use(storedKey, 'hash')
      if (entry === undefined)
        put(storedKey, { type: 'hash', value: new Map(entries), expiresAt: undefined })
      else for (const [field, value] of entries) entry.value.set(field, value)
    },
    async hashGet(key, field) {
      return use(full(key), 'hash')?.value.get(field)
    },
    async hashGetAll(key) {
      const entry = use(full(key), 'hash')
      return entry === undefined ? {} : Object.fromEntries(entry.value)
    },
    async hashDelete(key, ...fields) {
      if (fields.length === 0) return 0
      const storedKey = full(key)
      const entry = use(storedKey, 'hash')
      if (entry === undefined) return 0
      let deleted = 0
      for (const field of fields) if (entry.value.delete(field)) deleted++
      if (entry.value.size === 0) store.delete(storedKey)
      return deleted
    },

    async listPush(key, values, side = 'right') {
      const storedKey = full(key)
      const entry = use(storedKey, 'list')
      if (values.length === 0) return entry?.value.length ?? 0
      // LPUSH a b c leaves c first: each value goes to the head in turn.
      const pushed = side === 'left' ? [...values].reverse() : [...values]
      if (entry === undefined) {
        put(storedKey, { type: 'list', value: pushed, expiresAt: undefined })
        return pushed.length
      }
      entry.value = side === 'left' ? pushed.concat(entry.value) : entry.value.concat(pushed)
      return entry.value.length
    },
    async listRange(key, start, stop) {
      checkIndexes(start, stop)
      const list = use(full(key), 'list')?.value ?? []
      return list.slice(...lrangeBounds(list.length, start, stop))
    },
    async listPop(key, side = 'right') {
      const storedKey = full(key)
      const entry = use(storedKey, 'list')
      if (entry === undefined) return undefined
      const value = side === 'left' ? entry.value.shift() : entry.value.pop()
      if (entry.value.length === 0) store.delete(storedKey)
      return value
    },

    async increment(key, by = 1, ttlSeconds) {
      checkIncrement(by)
      const expiry = expiresAt(ttlSeconds)
      const storedKey = full(key)
      const entry = use(storedKey, 'string')
      if (entry === undefined) {
        put(storedKey, { type: 'string', value: String(by), expiresAt: expiry })
        return by
      }
      // Redis accepts only the canonical form of a 64-bit integer: no spaces, "+" or leading 0.
      if (!/^(0|-?[1-9][0-9]*)$/.test(entry.value)) throw new Error(NOT_AN_INTEGER)
      const next = Number(entry.value) + by
      if (!Number.isSafeInteger(next)) throw new Error('ERR increment or decrement would overflow')
      entry.value = String(next)
      return next
    },

    async ping() {},
    async close() {
      clearInterval(sweeper)
      store.clear()
    },
  }
  return cache
}

/** LRANGE's index rules: negative counts from the tail, out-of-range clamps. */
function lrangeBounds(length: number, start: number, stop: number): [number, number] {
  let from = start < 0 ? length + start : start
  let to = stop < 0 ? length + stop : stop
  if (from < 0) from = 0
  if (to >= length) to = length - 1
  if (from > to || from >= length) return [0, 0]
  return [from, to + 1]
}
