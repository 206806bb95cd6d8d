import type { Redis } from 'ioredis'
import { createRedis, type RedisLogger } from '../redis/index.ts'
import { createMemoryPubSub } from './memory-pubsub.ts'
import type { PubSub } from './pubsub.ts'
import { createRedisPubSub } from './redis-pubsub.ts'

export interface CreatePubSubOptions {
  /** REDIS_URL; unset: the in-process pub/sub. */
  redisUrl: string | undefined
  /** The shared command connection (publishes, history); required with `redisUrl`. */
  publisher: Redis | undefined
  /** APP_NAME. */
  prefix: string
  logger: RedisLogger & { error(object: object, message: string): void }
  historyLimit?: number
  historyTtlSeconds?: number
}

/**
 * The pub/sub for the mode: with a Redis URL, Redis pub/sub on a subscriber connection of its
 * own, opened here and closed by the returned pub/sub's `close()`; otherwise in process.
 */
export async function createPubSub(options: CreatePubSubOptions): Promise<PubSub> {
  const { redisUrl, publisher, prefix, logger } = options
  const onHandlerError = (error: unknown, channel: string) =>
    logger.error({ err: error, channel }, 'a pub/sub subscriber failed')
  const history = {
    ...(options.historyLimit === undefined ? {} : { historyLimit: options.historyLimit }),
    ...(options.historyTtlSeconds === undefined
      ? {}
      : { historyTtlSeconds: options.historyTtlSeconds }),
  }
  if (!redisUrl) return createMemoryPubSub({ ...history, onHandlerError })
  if (!publisher) throw new Error('the Redis pub/sub needs the shared Redis connection')

  const subscriber = await createRedis(redisUrl, logger, { connectionName: `${prefix}-pubsub` })
  const pubsub = createRedisPubSub({
    publisher,
    subscriber: subscriber.client,
    prefix,
    onHandlerError,
    ...history,
  })
  return {
    ...pubsub,
    async close() {
      await pubsub.close()
      await subscriber.close()
    },
  }
}
