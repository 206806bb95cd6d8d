export {
  LOCK_NOT_ACQUIRED,
  LOCK_UNAVAILABLE,
  type Lock,
  type LockLogger,
  type LockManager,
  type LockOptions,
} from './lock.ts'
export { createMemoryLockManager, type MemoryLockOptions } from './memory-lock.ts'
export { createRedisLockManager, type RedisLockOptions } from './redis-lock.ts'
export { leaseWorkerId, type WorkerIdLease, type WorkerIdLeaseOptions } from './worker-id-lease.ts'
