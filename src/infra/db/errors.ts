/** SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY. */
const SQLITE_UNIQUE_CODES = new Set([2067, 1555])

/**
 * Whether `error` is a unique-constraint violation on any of the three databases (MySQL
 * ER_DUP_ENTRY, PostgreSQL 23505, SQLite SQLITE_CONSTRAINT_UNIQUE), so a repository can turn a
 * lost race (two sign-ups with one name) into an answer instead of a 500.
 */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, errno, errcode } = error as { code?: unknown; errno?: unknown; errcode?: unknown }
  return (
    code === 'ER_DUP_ENTRY' ||
    errno === 1062 ||
    code === '23505' ||
    (code === 'ERR_SQLITE_ERROR' && SQLITE_UNIQUE_CODES.has(errcode as number))
  )
}

/** Node socket errors: the server is not there, or the connection to it broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/** mysql2 and MySQL/MariaDB codes for a lost or refused connection and a server going down. */
const MYSQL_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
])
/** CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_SERVER_GONE_ERROR, CR_SERVER_LOST. */
const MYSQL_CLIENT_ERRNOS = new Set([2002, 2003, 2006, 2013])

/** PostgreSQL SQLSTATEs: the server shutting down, not accepting, or out of connections. */
const POSTGRES_CODES = new Set(['57P01', '57P02', '57P03', '53300'])

/** What pg, pg-pool and mysql2 say (without a code) when a connection is gone or never came. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Connection ended',
  "Can't add new command when connection is in closed state",
]

/**
 * Whether `error` (or its cause) means the database server cannot be reached right now: refused
 * or reset connections, a pool that could not get a connection in time, the server shutting
 * down (PostgreSQL 57P01, MariaDB ER_SERVER_SHUTDOWN), lost connections. Such a failure is an
 * outage, not a bug: the request gets 503 DATABASE_UNAVAILABLE with Retry-After, and a job its
 * retry. SQL errors (constraint violations, syntax, a statement timeout) are not included.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false
  const { code, errno, message, cause, errors } = error as {
    code?: unknown
    errno?: unknown
    message?: unknown
    cause?: unknown
    errors?: unknown
  }
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || MYSQL_CODES.has(code)) return true
    // Class 08: connection exceptions.
    if (POSTGRES_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true
  }
  if (typeof errno === 'number' && MYSQL_CLIENT_ERRNOS.has(errno)) return true
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((text) => message.includes(text)))
    return true
  if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnavailable(inner, depth + 1)))
    return true
  return isDatabaseUnavailable(cause, depth + 1)
}
