/**
 * The cache every module talks to. Two implementations pass one contract suite: Redis (ioredis)
 * in distributed mode and a bounded in-process map in embedded mode. Keys given here are
 * relative: the implementation prefixes each with `${APP_NAME}:`.
 * TTLs are in seconds; `ttl()` follows Redis: -2 for a missing key, -1 for a key without expiry.
 */
export interface Cache {
  /** Raw string values: the fast path for JSON that is stored and served as bytes. */
  get(key: string): Promise<string | undefined>
  set(key: string, value: string, ttlSeconds?: number): Promise<void>
  getJson<T>(key: string): Promise<T | undefined>
  setJson(key: string, value: unknown, ttlSeconds?: number): Promise<void>
  /** Deletes the keys; resolves to how many existed. */
  delete(...keys: string[]): Promise<number>
  expire(key: string, ttlSeconds: number): Promise<boolean>
  exists(key: string): Promise<boolean>
  ttl(key: string): Promise<number>
  hashSet(key: string, fields: Record<string, string>): Promise<void>
  hashGet(key: string, field: string): Promise<string | undefined>
  hashGetAll(key: string): Promise<Record<string, string>>
  hashDelete(key: string, ...fields: string[]): Promise<number>
  /** Pushes onto the left (head) or right (tail); resolves to the new length. */
  listPush(key: string, values: string[], side?: 'left' | 'right'): Promise<number>
  /** Inclusive range, negative indexes count from the tail, as in LRANGE. */
  listRange(key: string, start: number, stop: number): Promise<string[]>
  listPop(key: string, side?: 'left' | 'right'): Promise<string | undefined>
  /** Atomically adds `by` and resolves to the new value; sets the TTL when the key is new. */
  increment(key: string, by?: number, ttlSeconds?: number): Promise<number>
  /** Answers when the backing store does; throws otherwise (used by /ready). */
  ping(): Promise<void>
  close(): Promise<void>
}
