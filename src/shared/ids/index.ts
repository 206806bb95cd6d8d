export {
  createSnowflake,
  type IdGenerator,
  parseSnowflake,
  SNOWFLAKE_EPOCH_MS,
  type Snowflake,
  type SnowflakeOptions,
  workerIdFrom,
} from './snowflake.ts'
