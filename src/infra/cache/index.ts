export type { Cache } from './cache.ts'
export {
  type CacheClock,
  createMemoryCache,
  type MemoryCache,
  type MemoryCacheOptions,
} from './memory-cache.ts'
export { createRedisCache, type RedisCacheOptions } from './redis-cache.ts'
