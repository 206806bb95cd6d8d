import { Metadata } from '@grpc/grpc-js'
import { currentTraceHeaders } from '../../shared/trace-context.ts'

export interface OutgoingMetadataOptions {
  /** Sent as x-app-id: which application calls. */
  appId: string
  /** Sent as `authorization: Bearer <token>`. */
  token?: string
  /** More entries (lower-case keys). */
  extra?: Readonly<Record<string, string>>
}

/**
 * The metadata of an outgoing call: the bearer token, the app id, and the current request's
 * trace (`traceparent`, `tracestate`) and `x-request-id`, so the server's logs join ours.
 */
export function outgoingMetadata(options: OutgoingMetadataOptions): Metadata {
  const metadata = new Metadata()
  for (const [key, value] of Object.entries(currentTraceHeaders())) {
    if (value !== undefined) metadata.set(key, value)
  }
  for (const [key, value] of Object.entries(options.extra ?? {})) metadata.set(key, value)
  metadata.set('x-app-id', options.appId)
  if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`)
  return metadata
}
