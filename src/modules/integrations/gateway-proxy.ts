import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Cache } from '../../infra/cache/index.ts'
import {
  type HttpClient,
  HttpClientError,
  type HttpMethod,
  type ResponseHeaders,
} from '../../infra/http-client/index.ts'
import { currentTraceHeaders } from '../../shared/trace-context.ts'
import {
  gatewayBadPath,
  upstreamBadAnswer,
  upstreamTimeout,
  upstreamUnreachable,
} from './integrations-errors.ts'
import type { GatewayRoute } from './upstream-config.ts'

/** Request headers passed on; the rest (cookies, hop-by-hop, our own) stay here. */
const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'accept-language',
  'authorization',
  'content-type',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-unmodified-since',
  'range',
  'user-agent',
] as const

/** Response headers passed back; hop-by-hop ones (connection, transfer-encoding) never are. */
const RETURNED_RESPONSE_HEADERS = [
  'accept-ranges',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-range',
  'content-type',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'set-cookie',
  'vary',
  'www-authenticate',
] as const

/** Larger answers are streamed through and never cached. */
const MAX_CACHED_BYTES = 256 * 1024

interface CachedAnswer {
  status: number
  headers: Record<string, string | string[]>
  /** base64 */
  body: string
}

export interface GatewayProxyOptions {
  http: HttpClient
  cache: Cache
  /** Until the upstream's headers arrive; then undici's idle timeout on the body. */
  timeoutMs: number
  /** 0: no caching. */
  cacheTtlSeconds: number
  logger?: Logger
}

/**
 * Forwards a request to its route's upstream and streams the answer back: method, path below
 * the prefix, query, body bytes and selected headers, with X-Forwarded-*, X-Request-ID and the
 * trace. No retries: a gateway that retried would multiply load on a struggling upstream; the
 * client decides. A GET 200 answer that may be shared (no Authorization or Cookie on the
 * request, no Set-Cookie, no no-store/private, a known length up to 256 KiB) is cached for
 * `cacheTtlSeconds`, keyed by method and upstream URL. Failures: no connection or a broken
 * answer → 502, no headers within the timeout → 504.
 */
export function createGatewayProxy(options: GatewayProxyOptions) {
  const { http, cache, timeoutMs, cacheTtlSeconds, logger } = options

  return async function proxy(
    route: GatewayRoute,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const rest = request.url.slice(route.prefix.length)
    if (hasDotSegment(rest)) throw gatewayBadPath()
    const target = route.upstream + rest
    const method = request.method as HttpMethod
    const headers = forwardedHeaders(request)
    const key =
      method === 'GET' &&
      cacheTtlSeconds > 0 &&
      headers.authorization === undefined &&
      request.headers.cookie === undefined
        ? `gateway:${createHash('sha256').update(`GET ${target}`).digest('base64url')}`
        : undefined

    if (key) {
      const hit = await cache.get(key).catch(() => undefined)
      if (hit !== undefined) {
        const cached = JSON.parse(hit) as CachedAnswer
        return reply
          .code(cached.status)
          .headers(cached.headers)
          .header('x-cache', 'HIT')
          .send(Buffer.from(cached.body, 'base64'))
      }
    }

    // A client that goes away takes its upstream call with it.
    const controller = new AbortController()
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort()
    })
    const body = request.body
    let response: Awaited<ReturnType<HttpClient['request']>>
    try {
      response = await http.request(target, {
        method,
        headers,
        body: Buffer.isBuffer(body) && body.length > 0 ? body : undefined,
        timeoutMs,
        retries: 0,
        signal: controller.signal,
      })
    } catch (error) {
      // The client went away: nobody to answer, and nothing went wrong upstream.
      if (controller.signal.aborted) return reply
      throw failure(route, error)
    }
    const returned = pick(response.headers)
    if (key && response.status === 200 && isShareable(response.headers)) {
      const length = Number(response.headers['content-length'])
      if (Number.isInteger(length) && length <= MAX_CACHED_BYTES) {
        let bytes: Buffer
        try {
          bytes = Buffer.from(await response.body.arrayBuffer())
        } catch (error) {
          throw failure(route, error)
        }
        const entry: CachedAnswer = {
          status: 200,
          headers: returned,
          body: bytes.toString('base64'),
        }
        await cache.set(key, JSON.stringify(entry), cacheTtlSeconds).catch((error: unknown) => {
          logger?.warn({ err: error }, 'gateway cache unavailable: answer not cached')
        })
        return reply.code(200).headers(returned).header('x-cache', 'MISS').send(bytes)
      }
    }
    return reply.code(response.status).headers(returned).send(response.body)
  }

  function failure(route: GatewayRoute, error: unknown): Error {
    logger?.warn({ err: error, upstream: route.upstream }, 'gateway upstream failed')
    if (error instanceof HttpClientError) {
      if (error.kind === 'timeout') return upstreamTimeout(route.prefix, timeoutMs, error)
      if (error.kind === 'network') return upstreamUnreachable(route.prefix, error)
    }
    return upstreamBadAnswer(route.prefix, error)
  }
}

function forwardedHeaders(request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  const forwardedFor = request.headers['x-forwarded-for']
  headers['x-forwarded-for'] = [typeof forwardedFor === 'string' ? forwardedFor : '', request.ip]
    .filter(Boolean)
    .join(', ')
  headers['x-forwarded-proto'] = request.protocol
  headers['x-forwarded-host'] = request.host
  for (const [name, value] of Object.entries(currentTraceHeaders())) {
    if (value !== undefined) headers[name] = value
  }
  return headers
}

function pick(headers: ResponseHeaders): Record<string, string | string[]> {
  const picked: Record<string, string | string[]> = {}
  for (const name of RETURNED_RESPONSE_HEADERS) {
    const value = headers[name]
    if (value !== undefined) picked[name] = value
  }
  return picked
}

function isShareable(headers: ResponseHeaders): boolean {
  if (headers['set-cookie'] !== undefined) return false
  const control = String(headers['cache-control'] ?? '').toLowerCase()
  return !/\b(no-store|private|no-cache)\b/.test(control)
}

/**
 * "/a/../b" would climb out of the upstream's base path once the URL is normalised, so any
 * "." or ".." segment (also percent-encoded) is refused.
 */
function hasDotSegment(rest: string): boolean {
  const path = rest.split('?')[0] ?? ''
  return path.split('/').some((segment) => {
    const decoded = segment.replace(/%2e/gi, '.')
    return decoded === '.' || decoded === '..'
  })
}
