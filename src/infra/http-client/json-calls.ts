import type { Readable } from 'node:stream'
import { HttpClientError } from './http-client-error.ts'
import type {
  CallOptions,
  HttpMethod,
  HttpResponse,
  ResponseHeaders,
  SendOptions,
  TimeoutScope,
  Transport,
} from './http-transport.ts'

/**
 * The answer of a JSON call. Never thrown for HTTP or network trouble:
 * - 2xx with a JSON body: `ok`, `data` (null for an empty body, e.g. 204);
 * - 4xx/5xx: `error.kind` 'http', `status` the upstream's, `error.body` its parsed body;
 * - no answer (refused, reset, timeout, aborted): `status` 0 and `error.kind` says which.
 */
export type JsonResult<T> =
  | { ok: true; status: number; data: T; error: undefined; headers: ResponseHeaders }
  | {
      ok: false
      status: number
      data: undefined
      error: HttpClientError
      headers: ResponseHeaders
    }

export interface UploadOptions extends CallOptions {
  /** Default PUT. */
  method?: 'POST' | 'PUT'
  /** Default application/octet-stream. */
  contentType?: string
  /** Sent as Content-Length when known; otherwise the body goes chunked. */
  contentLength?: number
}

const ERROR_BODY_LIMIT = 4096

/** Reads a whole body, refusing more than `maxBytes`. */
export async function readBody(
  response: HttpResponse,
  maxBytes: number,
  where: { method: string; url: string },
): Promise<Buffer> {
  const declared = Number(response.headers['content-length'])
  const chunks: Buffer[] = []
  let size = 0
  const tooLarge = () =>
    new HttpClientError(
      'too_large',
      `${where.method} ${where.url}: the answer is larger than ${maxBytes} bytes`,
      { status: response.status, ...where, attempts: response.attempts },
    )
  if (declared > maxBytes) {
    // Destroying an unfinished undici body emits an abort error: nobody needs it.
    response.body.on('error', () => {}).destroy()
    throw tooLarge()
  }
  // Leaving the loop early (the throw) destroys the body and closes that socket.
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, size)
}

/** What the JSON helpers of a client are built from. */
export function createJsonCalls(transport: Transport, maxResponseBytes: number) {
  async function call<T>(
    path: string,
    send: SendOptions & { contentType?: string },
    scope: TimeoutScope = 'whole',
  ): Promise<JsonResult<T>> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (send.body !== undefined) headers['content-type'] = send.contentType ?? 'application/json'
    const options = { ...send, headers: { ...headers, ...send.headers } }
    const url = transport.resolve(path, send.query)
    const where = { method: send.method, url: url.origin + url.pathname }
    try {
      return await transport.send(path, options, scope, async (response) => {
        const text = (await readBody(response, maxResponseBytes, where)).toString('utf8')
        const isOk = response.status >= 200 && response.status < 300
        if (!isOk) {
          const error = new HttpClientError(
            'http',
            `${where.method} ${where.url}: upstream answered ${response.status}`,
            {
              status: response.status,
              ...where,
              attempts: response.attempts,
              body: errorBody(text),
            },
          )
          return {
            ok: false,
            status: response.status,
            data: undefined,
            error,
            headers: response.headers,
          }
        }
        let data: T
        try {
          data = (text.trim() === '' ? null : JSON.parse(text)) as T
        } catch (cause) {
          const error = new HttpClientError(
            'invalid_json',
            `${where.method} ${where.url}: the answer is not JSON`,
            {
              status: response.status,
              ...where,
              attempts: response.attempts,
              body: errorBody(text),
            },
            { cause },
          )
          return {
            ok: false,
            status: response.status,
            data: undefined,
            error,
            headers: response.headers,
          }
        }
        return {
          ok: true,
          status: response.status,
          data,
          error: undefined,
          headers: response.headers,
        }
      })
    } catch (error) {
      if (!(error instanceof HttpClientError)) throw error
      return { ok: false, status: error.status, data: undefined, error, headers: {} }
    }
  }

  const withBody =
    (method: HttpMethod) =>
    <T>(path: string, body: unknown, options: CallOptions = {}) =>
      call<T>(path, { ...options, method, body: JSON.stringify(body) })
  const withoutBody =
    (method: HttpMethod) =>
    <T>(path: string, options: CallOptions = {}) =>
      call<T>(path, { ...options, method })

  return {
    getJson: withoutBody('GET'),
    deleteJson: withoutBody('DELETE'),
    postJson: withBody('POST'),
    putJson: withBody('PUT'),
    patchJson: withBody('PATCH'),
    /**
     * Streams `source` as the request body at constant memory (undici writes with backpressure)
     * and reads the JSON answer. Never retried; no overall timeout (pass a signal for one), only
     * the idle timeouts, as an upload may rightly take long.
     */
    upload<T>(path: string, source: Readable, options: UploadOptions = {}): Promise<JsonResult<T>> {
      const headers: Record<string, string> = { ...options.headers }
      if (options.contentLength !== undefined)
        headers['content-length'] = String(options.contentLength)
      return call<T>(
        path,
        {
          ...options,
          method: options.method ?? 'PUT',
          body: source,
          contentType: options.contentType ?? 'application/octet-stream',
          headers,
        },
        'idle',
      )
    },
  }
}

function errorBody(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text.length > ERROR_BODY_LIMIT ? text.slice(0, ERROR_BODY_LIMIT) : text
  }
}
