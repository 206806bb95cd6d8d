import type { Redis } from 'ioredis'
import { defineTask } from '../index.ts'

/**
 * A task that counts its own executions in Redis (`<prefix>:executions`, a hash of task id to
 * runs) and marks finished runs (`<prefix>:done`, a set), so that tests can see across
 * processes what ran, and how often.
 */
export function countingTask(redis: Redis, prefix: string) {
  return defineTask({
    name: 'test.count',
    handler: async ({ ms }: { ms: number }, context) => {
      await redis.hincrby(`${prefix}:executions`, context.id, 1)
      await redis.rpush(`${prefix}:runs`, `${context.id}|${process.pid}`)
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
      await redis.sadd(`${prefix}:done`, context.id)
      return context.attempt
    },
  })
}
