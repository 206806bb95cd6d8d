/**
 * Why a call gave no usable answer:
 * - `http`: the upstream answered 4xx or 5xx (`status` is its status, `body` its parsed body);
 * - `network`: no answer at all (refused, reset, DNS); `status` is 0;
 * - `timeout`: no complete answer within the timeout; `status` is 0;
 * - `aborted`: the caller's signal aborted the call; `status` is 0;
 * - `invalid_json`: a 2xx answer whose body is not JSON;
 * - `too_large`: the body exceeded the client's `maxResponseBytes`.
 */
export type HttpClientErrorKind =
  | 'http'
  | 'network'
  | 'timeout'
  | 'aborted'
  | 'invalid_json'
  | 'too_large'

/** A failed outgoing call; returned by the JSON helpers, thrown by the streaming ones. */
export class HttpClientError extends Error {
  override name = 'HttpClientError'
  readonly kind: HttpClientErrorKind
  /** The upstream's status, or 0 when there was no answer. */
  readonly status: number
  readonly method: string
  readonly url: string
  /** How many attempts were made (1 + retries used). */
  readonly attempts: number
  /** The error body (parsed JSON, else text up to 4 KiB), for `http` errors. */
  readonly body: unknown

  constructor(
    kind: HttpClientErrorKind,
    message: string,
    details: { status: number; method: string; url: string; attempts: number; body?: unknown },
    options: { cause?: unknown } = {},
  ) {
    super(message, options)
    this.kind = kind
    this.status = details.status
    this.method = details.method
    this.url = details.url
    this.attempts = details.attempts
    this.body = details.body
  }
}
