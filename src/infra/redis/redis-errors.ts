import { AppError } from '../../shared/errors.ts'

/**
 * True for an error the Redis server answered (WRONGTYPE, a Lua error, a bad argument): a bug
 * or bad data, not an outage. Everything else (refused, closed, timed out) means Redis is
 * unreachable.
 */
export function isRedisReplyError(error: unknown): boolean {
  // By name, not `instanceof` ioredis's ReplyError: importing the class would load the driver in
  // processes that never open Redis. redis-errors names each error after its class.
  return error instanceof Error && error.name === 'ReplyError'
}

/**
 * Turns a connection failure into an AppError of kind 'unavailable' with `code`, keeping the
 * driver's error as `cause`; server replies (bugs, bad data) pass through unchanged.
 */
export function toUnavailableError(error: unknown, code: string, what: string): unknown {
  if (isRedisReplyError(error) || error instanceof AppError) return error
  const reason = error instanceof Error ? error.message : String(error)
  return new AppError('unavailable', code, `${what} is unavailable: ${reason}`, { cause: error })
}
