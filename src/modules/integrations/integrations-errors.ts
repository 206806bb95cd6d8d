import { AppError } from '../../shared/errors.ts'

/** The errors of the gateway, aggregation, compute and gRPC endpoints. */

export const upstreamUnreachable = (name: string, cause?: unknown) =>
  new AppError(
    'upstream_failed',
    'UPSTREAM_UNREACHABLE',
    `Upstream "${name}" could not be reached`,
    {
      cause,
    },
  )

export const upstreamBadAnswer = (name: string, cause?: unknown) =>
  new AppError(
    'upstream_failed',
    'UPSTREAM_BAD_RESPONSE',
    `Upstream "${name}" gave no usable answer`,
    {
      cause,
    },
  )

export const upstreamTimeout = (name: string, timeoutMs: number, cause?: unknown) =>
  new AppError(
    'upstream_timeout',
    'UPSTREAM_TIMEOUT',
    `Upstream "${name}" did not answer within ${timeoutMs} ms`,
    { cause },
  )

export const noUpstreams = () =>
  new AppError('unavailable', 'AGGREGATE_NO_UPSTREAMS', 'No upstreams are configured')

/** A 422 in FastAPI's list shape, as every 422 is. */
export const gatewayBadPath = () =>
  new AppError('invalid', 'GATEWAY_BAD_PATH', 'The path may not contain "." or ".." segments', {
    details: [
      {
        loc: ['path'],
        msg: 'The path may not contain "." or ".." segments',
        type: 'value_error',
      },
    ],
  })

export const grpcNotAuthenticated = (why: string) =>
  new AppError('unauthorized', 'GRPC_NOT_AUTHENTICATED', `Not authenticated: ${why}`)

export const grpcBadArgument = (message: string) =>
  new AppError('invalid', 'GRPC_INVALID_ARGUMENT', message)
