/**
 * What went wrong, in terms the domain understands. The HTTP layer maps a kind to a status;
 * the domain never speaks HTTP.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'
  /** A service we called answered wrongly or not at all (HTTP 502). */
  | 'upstream_failed'
  /** A service we called did not answer in time (HTTP 504). */
  | 'upstream_timeout'

/** An expected, operational error with a stable code (e.g. ITEMS_NOT_FOUND). */
export class AppError extends Error {
  override name = 'AppError'
  readonly kind: ErrorKind
  readonly code: string
  readonly details: unknown

  constructor(
    kind: ErrorKind,
    code: string,
    message: string,
    options: { cause?: unknown; details?: unknown } = {},
  ) {
    super(message, { cause: options.cause })
    this.kind = kind
    this.code = code
    this.details = options.details
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError
}
