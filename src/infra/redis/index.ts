export {
  createRedis,
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisLogger,
  reconnectDelayMs,
} from './redis.ts'
export { isRedisReplyError, toUnavailableError } from './redis-errors.ts'
export { defineScript, type RedisScript } from './redis-script.ts'
