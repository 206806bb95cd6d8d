import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type * as Undici from 'undici'
import type { Agent, Dispatcher } from 'undici'

const require = createRequire(import.meta.url)

import { type SigningKey, signRequest } from '../../shared/hmac-signing.ts'
import { currentContext } from '../../shared/request-context.ts'
import { HttpClientError, type HttpClientErrorKind } from './http-client-error.ts'
import {
  backoffDelayMs,
  isIdempotent,
  isRetryableStatus,
  retryAfterMs as parseRetryAfter,
} from './retry-policy.ts'

export type HttpMethod = 'GET' | 'HEAD' | 'OPTIONS' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export type ResponseHeaders = Record<string, string | string[] | undefined>

export interface TransportOptions {
  /** Prefix for relative paths, e.g. http://users.internal:8000/api. */
  baseUrl?: string
  /** Per attempt. Buffered calls: the whole answer; streams: until the headers arrive. */
  timeoutMs: number
  /** Extra attempts for idempotent methods on network errors, timeouts and 502/503/504. */
  retries: number
  /** Most sockets open per upstream origin (0: no limit). */
  connections: number
  /** How long an idle keep-alive socket stays open. */
  keepAliveTimeoutMs: number
  /** First backoff ceiling; doubles per retry (full jitter). Default 100. */
  retryBaseDelayMs?: number
  /** Largest wait between attempts; a longer Retry-After ends the retries. Default 5000. */
  retryMaxDelayMs?: number
  /** Sign every call with HMAC (see shared/hmac-signing.ts). */
  sign?: SigningKey
  /** Headers sent on every call (e.g. user-agent). */
  headers?: Record<string, string>
}

/** Options every call takes. */
export interface CallOptions {
  headers?: Record<string, string>
  query?: Record<string, string | number | boolean | undefined>
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number
  /** Overrides the client's retries for this call. */
  retries?: number
  /** Aborting it ends the call (and its retries) with kind `aborted`. */
  signal?: AbortSignal
}

export interface SendOptions extends CallOptions {
  method: HttpMethod
  body?: string | Uint8Array | Readable
}

/** An answer with its body still to be read. */
export interface HttpResponse {
  status: number
  headers: ResponseHeaders
  /** The body stream; read it or call `body.dump()`, or the socket is not reused. */
  body: Dispatcher.ResponseData['body']
  attempts: number
}

/**
 * What the per-attempt timeout covers.
 * - `whole`: sending, the headers and the body read by `consume`; a failure while reading is
 *   retried like any other (nothing left the process yet).
 * - `headers`: until the headers arrive; the body then only has undici's idle timeout of the
 *   same length (~1 s precision), and `consume` is never retried: it may have written somewhere.
 * - `idle`: no overall limit at all, only undici's idle timeouts (for long uploads).
 */
export type TimeoutScope = 'whole' | 'headers' | 'idle'

export interface Transport {
  send<R>(
    path: string,
    options: SendOptions,
    scope: TimeoutScope,
    consume: (response: HttpResponse) => Promise<R>,
  ): Promise<R>
  /** The absolute URL for a path, as the client would call it. */
  resolve(path: string, query?: CallOptions['query']): URL
  close(): Promise<void>
}

/** The pooled, retrying, signing core the client's helpers share. */
export function createTransport(options: TransportOptions): Transport {
  for (const key of ['timeoutMs', 'retries', 'connections', 'keepAliveTimeoutMs'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 0)
      throw new TypeError(`${key} must be a non-negative integer, got ${options[key]}`)
  }
  // undici and the pool are made on the first call: most processes make a client for each
  // configured upstream and many never call it (start-up time and memory).
  let pool: { undici: typeof Undici; agent: Agent } | undefined
  const connect = () => {
    if (!pool) {
      const undici = require('undici') as typeof Undici
      const agent = new undici.Agent({
        connections: options.connections || null,
        keepAliveTimeout: options.keepAliveTimeoutMs,
        keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs, 600_000),
      })
      pool = { undici, agent }
    }
    return pool
  }
  const baseDelayMs = options.retryBaseDelayMs ?? 100
  const maxDelayMs = options.retryMaxDelayMs ?? 5000
  const baseUrl = options.baseUrl?.replace(/\/+$/, '')

  const resolve = (path: string, query?: CallOptions['query']): URL => {
    let url: URL
    if (/^https?:\/\//i.test(path)) url = new URL(path)
    else if (baseUrl) url = new URL(baseUrl + (path.startsWith('/') ? path : `/${path}`))
    else throw new TypeError(`a relative path (${path}) needs the client's baseUrl`)
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.append(name, String(value))
    }
    return url
  }

  const headersFor = (url: URL, send: SendOptions): Record<string, string> => {
    const headers: Record<string, string> = {}
    for (const source of [options.headers, send.headers]) {
      for (const [name, value] of Object.entries(source ?? {})) headers[name.toLowerCase()] = value
    }
    const requestId = currentContext()?.requestId
    if (requestId !== undefined && headers['x-request-id'] === undefined)
      headers['x-request-id'] = requestId
    if (options.sign) {
      if (send.body instanceof Readable)
        throw new TypeError('a streamed body cannot be signed: its hash is unknown until sent')
      // Signed per attempt: each retry needs a fresh nonce, the verifier refuses a seen one.
      Object.assign(
        headers,
        signRequest(
          { method: send.method, path: url.pathname + url.search, body: send.body },
          options.sign,
        ),
      )
    }
    return headers
  }

  async function send<R>(
    path: string,
    sendOptions: SendOptions,
    scope: TimeoutScope,
    consume: (response: HttpResponse) => Promise<R>,
  ): Promise<R> {
    const method = sendOptions.method
    const url = resolve(path, sendOptions.query)
    const timeoutMs = sendOptions.timeoutMs ?? options.timeoutMs
    const isStreamBody = sendOptions.body instanceof Readable
    // A streamed body is consumed by the first attempt, so it cannot be sent again.
    const retries =
      isIdempotent(method) && !isStreamBody ? (sendOptions.retries ?? options.retries) : 0
    const callerSignal = sendOptions.signal
    const where = { method, url: url.origin + url.pathname }

    for (let attempt = 1; ; attempt++) {
      const headers = headersFor(url, sendOptions)
      const timeout = new AbortController()
      const timer =
        scope === 'idle'
          ? undefined
          : setTimeout(
              () =>
                timeout.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
              timeoutMs,
            )
      const signal = callerSignal ? AbortSignal.any([callerSignal, timeout.signal]) : timeout.signal
      let isConsuming = false
      let waitMs: number | undefined
      try {
        const { undici, agent } = connect()
        const answer = await undici.request(url, {
          dispatcher: agent,
          method,
          headers,
          body: sendOptions.body,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        })
        const response: HttpResponse = {
          status: answer.statusCode,
          headers: answer.headers,
          body: answer.body,
          attempts: attempt,
        }
        if (attempt <= retries && isRetryableStatus(response.status)) {
          waitMs = retryWaitMs(attempt, response.headers['retry-after'])
          if (waitMs !== undefined) {
            await answer.body.dump()
            continue
          }
        }
        if (scope === 'headers') clearTimeout(timer)
        isConsuming = true
        return await consume(response)
      } catch (error) {
        waitMs = undefined
        if (error instanceof HttpClientError) throw error
        const kind = classify(error, timeout.signal, callerSignal)
        const canRetry =
          kind !== 'aborted' && attempt <= retries && !(isConsuming && scope !== 'whole')
        if (!canRetry) {
          const message = kind === 'timeout' ? `no answer within ${timeoutMs} ms` : describe(error)
          throw new HttpClientError(
            kind,
            `${method} ${where.url}: ${message}`,
            { status: 0, ...where, attempts: attempt },
            { cause: error },
          )
        }
        waitMs = backoffDelayMs(attempt - 1, baseDelayMs, maxDelayMs)
      } finally {
        clearTimeout(timer)
        if (waitMs !== undefined) await pause(waitMs, callerSignal, where, attempt)
      }
    }
  }

  /** The wait before the next attempt, or undefined to give up and return this answer. */
  const retryWaitMs = (attempt: number, retryAfter: string | string[] | undefined) => {
    const backoff = backoffDelayMs(attempt - 1, baseDelayMs, maxDelayMs)
    const asked = parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined)
    if (asked === undefined) return backoff
    return asked > maxDelayMs ? undefined : Math.max(backoff, asked)
  }

  return {
    send,
    resolve,
    async close() {
      await pool?.agent.close()
    },
  }
}

async function pause(
  ms: number,
  signal: AbortSignal | undefined,
  where: { method: string; url: string },
  attempt: number,
): Promise<void> {
  try {
    await sleep(ms, undefined, { signal })
  } catch (error) {
    throw new HttpClientError(
      'aborted',
      `${where.method} ${where.url}: aborted`,
      { status: 0, ...where, attempts: attempt },
      { cause: error },
    )
  }
}

function classify(
  error: unknown,
  timeout: AbortSignal,
  callerSignal: AbortSignal | undefined,
): HttpClientErrorKind {
  if (callerSignal?.aborted) return 'aborted'
  if (timeout.aborted) return 'timeout'
  const code = (error as { code?: string }).code
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout'
  return 'network'
}

function describe(error: unknown): string {
  const err = error as { code?: string; message?: string }
  return err.code ? `${err.code} ${err.message ?? ''}`.trim() : String(err.message ?? error)
}
