import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { serviceUrls } from '../../../../test/helpers/services.ts'

export const redisUrl = serviceUrls.redis

/** A key prefix no other test uses: `t-<name>-<random>`. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`
}

/** Deletes every key under `prefix` (the Redis server is shared: never FLUSHALL). */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

export const silentLogger = { info() {}, warn() {}, error() {} }
