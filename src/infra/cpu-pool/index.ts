export {
  type CpuPool,
  type CpuPoolOptions,
  type CpuPoolStats,
  type CpuTaskInput,
  type CpuTaskName,
  type CpuTaskOutput,
  createCpuPool,
  defaultCpuThreads,
} from './cpu-pool.ts'
export {
  COUNT_PRIMES_MAX_LIMIT,
  type CountPrimesInput,
  HASH_CHAIN_MAX_ROUNDS,
  type HashChainInput,
} from './cpu-tasks.ts'
