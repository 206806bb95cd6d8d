export { createLoggers, type Loggers, type LogType, REDACT_PATHS } from './logger.ts'
