export type { Config } from './config-schema.ts'
export { ConfigSchema, EXAMPLE_JWT_SECRET } from './config-schema.ts'
export { ConfigError, type LoadConfigOptions, loadConfig } from './load-config.ts'
