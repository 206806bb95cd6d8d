/** Deduplicates concurrent work by key. */
export interface SingleFlight<T> {
  /**
   * Runs `fn` unless a call for `key` is already in flight, in which case it shares that call's
   * promise: its value or its error. Nothing is kept once the call settles, so a failure is not
   * remembered and the next call tries again.
   */
  run(key: string, fn: () => Promise<T>): Promise<T>
  /** Keys with a call in flight. */
  readonly size: number
}

/**
 * For read-through caching: when many requests miss the same key at once, one loads it from the
 * database and the rest wait for that answer. Only in-process: replicas each load once.
 */
export function singleFlight<T>(): SingleFlight<T> {
  const inFlight = new Map<string, Promise<T>>()
  return {
    run(key, fn) {
      const existing = inFlight.get(key)
      if (existing !== undefined) return existing
      let promise: Promise<T>
      try {
        promise = fn()
      } catch (error) {
        promise = Promise.reject(error)
      }
      const shared = promise.finally(() => {
        if (inFlight.get(key) === shared) inFlight.delete(key)
      })
      inFlight.set(key, shared)
      return shared
    },
    get size() {
      return inFlight.size
    },
  }
}
