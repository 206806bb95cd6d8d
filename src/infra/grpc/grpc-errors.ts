import { Metadata, type ServiceError, status } from '@grpc/grpc-js'
import { type ErrorKind, isAppError } from '../../shared/errors.ts'

/** The gRPC status for each kind of AppError, as the HTTP error handler maps kinds to statuses. */
const STATUS_BY_KIND: Record<ErrorKind, status> = {
  invalid: status.INVALID_ARGUMENT,
  unauthorized: status.UNAUTHENTICATED,
  forbidden: status.PERMISSION_DENIED,
  not_found: status.NOT_FOUND,
  conflict: status.ALREADY_EXISTS,
  rate_limited: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  upstream_failed: status.UNAVAILABLE,
  upstream_timeout: status.DEADLINE_EXCEEDED,
}

/** Metadata key carrying an AppError's stable code (e.g. USERS_NOT_FOUND) with the status. */
export const ERROR_CODE_METADATA = 'x-error-code'

/**
 * The error a server handler answers with: an AppError keeps its message and code (in the
 * `x-error-code` trailer); anything else is a bug and becomes INTERNAL without internals.
 */
export function toServiceError(error: unknown): Partial<ServiceError> & { code: status } {
  if (isAppError(error)) {
    const metadata = new Metadata()
    metadata.set(ERROR_CODE_METADATA, error.code)
    return { code: STATUS_BY_KIND[error.kind], details: error.message, metadata }
  }
  return { code: status.INTERNAL, details: 'Internal error' }
}

/** A gRPC call that ended without an answer; `code` is the gRPC status. */
export class GrpcCallError extends Error {
  override name = 'GrpcCallError'
  readonly code: status
  /** The status name, e.g. DEADLINE_EXCEEDED. */
  readonly codeName: string
  /** The server's message. */
  readonly details: string
  /** The server's stable error code (x-error-code), when it sent one. */
  readonly errorCode: string | undefined

  constructor(method: string, error: Partial<ServiceError>) {
    const code = error.code ?? status.UNKNOWN
    const codeName = status[code] ?? 'UNKNOWN'
    const details = error.details ?? error.message ?? ''
    super(`${method}: ${codeName}: ${details}`, { cause: error })
    this.code = code
    this.codeName = codeName
    this.details = details
    const errorCode = error.metadata?.get(ERROR_CODE_METADATA)[0]
    this.errorCode = typeof errorCode === 'string' ? errorCode : undefined
  }
}
