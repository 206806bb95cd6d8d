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
