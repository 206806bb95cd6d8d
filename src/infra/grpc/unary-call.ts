import { type Client, type Metadata, type ServiceError, status } from '@grpc/grpc-js'
import { GrpcCallError } from './grpc-errors.ts'

export interface UnaryCallOptions {
  /** The call fails with DEADLINE_EXCEEDED after this long, wherever it is. */
  deadlineMs: number
  /** Aborting it cancels the call (CANCELLED). */
  signal?: AbortSignal
}

type UnaryMethod = (
  request: unknown,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null, response: unknown) => void,
) => { cancel(): void }

/**
 * Calls `method` of a client made from a loaded service definition and resolves with the
 * answer; rejects with GrpcCallError (DEADLINE_EXCEEDED once the deadline passes, never a hang).
 */
export function callUnary<Response>(
  client: Client,
  method: string,
  request: unknown,
  metadata: Metadata,
  options: UnaryCallOptions,
): Promise<Response> {
  const invoke = (client as unknown as Record<string, UnaryMethod | undefined>)[method]
  if (typeof invoke !== 'function') throw new TypeError(`the client has no method ${method}`)
  const { signal } = options
  return new Promise<Response>((resolve, reject) => {
    if (signal?.aborted) {
      reject(
        new GrpcCallError(method, { code: status.CANCELLED, details: 'aborted before the call' }),
      )
      return
    }
    const onAbort = () => call.cancel()
    const call = invoke.call(
      client,
      request,
      metadata,
      { deadline: new Date(Date.now() + options.deadlineMs) },
      (error, response) => {
        signal?.removeEventListener('abort', onAbort)
        if (error) reject(new GrpcCallError(method, error))
        else resolve(response as Response)
      },
    )
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
