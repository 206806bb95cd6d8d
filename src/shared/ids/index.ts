export {
  createSnowflake,
  type IdGenerator,
  isWorkerIdPinned,
  parseSnowflake,
  SNOWFLAKE_EPOCH_MS,
  type Snowflake,
  type SnowflakeOptions,
  workerIdFrom,
} from './snowflake.ts'
