import { type Metadata, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { isAppError } from '../../shared/errors.ts'
import { runInTrace, type TraceHeaders } from '../../shared/trace-context.ts'
import { toServiceError } from './grpc-errors.ts'

/** What a handler knows about its call besides the request message. */
export interface CallContext {
  metadata: Metadata
  /** Aborts when the caller cancels or its deadline passes: stop the work then. */
  signal: AbortSignal
}

/** Checks a call's metadata before the handler runs; throws an AppError to refuse it. */
export type CallGuard = (metadata: Metadata) => Promise<void>

export interface UnaryHandlerOptions {
  /** Runs before the handler; an AppError('unauthorized') becomes UNAUTHENTICATED. */
  guard?: CallGuard
  /** One line per call (method, status, duration); errors that are bugs go to it with the stack. */
  logger?: Logger
}

/**
 * Wraps an async function as a grpc-js unary handler: the call runs in a request context that
 * continues the caller's trace (`traceparent`, `x-request-id` metadata), so its log lines carry
 * the ids; the guard runs first; the signal aborts on cancellation or deadline (grpc-js cancels
 * the call then, and the answer is dropped); an AppError becomes its gRPC status.
 */
export function unaryHandler<Request, Response>(
  method: string,
  handler: (request: Request, context: CallContext) => Promise<Response>,
  options: UnaryHandlerOptions = {},
) {
  return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
    const controller = new AbortController()
    call.once('cancelled', () => controller.abort(new Error('the call was cancelled')))
    const startedMs = performance.now()
    void runInTrace(traceHeadersOf(call.metadata), async () => {
      try {
        await options.guard?.(call.metadata)
        const response = await handler(call.request, {
          metadata: call.metadata,
          signal: controller.signal,
        })
        log(options.logger, method, 'OK', startedMs)
        callback(null, response)
      } catch (error) {
        const answer = toServiceError(error)
        if (!isAppError(error))
          options.logger?.error({ err: error, grpc_method: method }, 'gRPC handler failed')
        log(options.logger, method, status[answer.code], startedMs)
        callback(answer)
      }
    })
  }
}

function log(logger: Logger | undefined, method: string, code: unknown, startedMs: number): void {
  logger?.info(
    {
      grpc_method: method,
      grpc_code: code,
      duration_ms: Math.round(performance.now() - startedMs),
    },
    'gRPC call',
  )
}

function traceHeadersOf(metadata: Metadata): TraceHeaders {
  const first = (key: string) => {
    const value = metadata.get(key)[0]
    return typeof value === 'string' ? value : undefined
  }
  const headers: TraceHeaders = {}
  const traceparent = first('traceparent')
  const tracestate = first('tracestate')
  const requestId = first('x-request-id')
  if (traceparent !== undefined) headers.traceparent = traceparent
  if (tracestate !== undefined) headers.tracestate = tracestate
  if (requestId !== undefined) headers['x-request-id'] = requestId
  return headers
}
