import type { LogEvent } from 'kysely'
import type { Logger } from 'pino'

/**
 * Kysely's `log` hook: a statement slower than `slowMs` is logged as a warning with its duration
 * and SQL text. Parameter values are user data (names, hashes), so they appear only when the
 * logger is at debug level. Failed statements are the caller's to report; they are logged here
 * only at debug, so a duplicate key the service turns into a 409 does not alarm anyone.
 */
export function createQueryLog(logger: Logger, slowMs: number): (event: LogEvent) => void {
  return (event) => {
    const durationMs = Math.round(event.queryDurationMillis * 10) / 10
    const isSlow = event.queryDurationMillis > slowMs
    const isDebug = logger.isLevelEnabled('debug')
    if (!isSlow && !(event.level === 'error' && isDebug)) return

    const fields: Record<string, unknown> = { durationMs, sql: shortened(event.query.sql) }
    if (isDebug) fields.params = event.query.parameters.slice(0, 100).map(loggable)
    if (event.level === 'error') {
      fields.err = event.error
      if (isSlow) logger.warn(fields, 'slow query failed')
      else logger.debug(fields, 'query failed')
    } else {
      logger.warn(fields, 'slow query')
    }
  }
}

/** Long enough to recognise the statement; a 1,000-row INSERT is not worth a megabyte of log. */
const MAX_SQL_CHARS = 1000

function shortened(text: string): string {
  return text.length <= MAX_SQL_CHARS
    ? text
    : `${text.slice(0, MAX_SQL_CHARS)}… (${text.length} characters)`
}

function loggable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return value.toISOString()
  // A bcrypt hash is a credential even at debug level.
  if (typeof value === 'string' && /^\$2[abxy]?\$/.test(value)) return '[redacted]'
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`
  return value
}
