import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

/** A Lua script run by its SHA1, loaded on first use and again after a server restart. */
export interface RedisScript {
  run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown>
}

/**
 * EVALSHA keeps the script text off the wire; on NOSCRIPT (first call, or the server restarted
 * or flushed its script cache) it falls back to EVAL, which also caches the script again.
 */
export function defineScript(lua: string): RedisScript {
  const sha = createHash('sha1').update(lua).digest('hex')
  return {
    async run(redis, keys, args) {
      try {
        return await redis.evalsha(sha, keys.length, ...keys, ...args)
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
        return redis.eval(lua, keys.length, ...keys, ...args)
      }
    },
  }
}
