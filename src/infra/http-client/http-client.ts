import type { Readable, Writable } from 'node:stream'
import {
  createDownloads,
  type Download,
  type DownloadInfo,
  type DownloadOptions,
} from './downloads.ts'
import {
  type CallOptions,
  createTransport,
  type HttpMethod,
  type HttpResponse,
  type TransportOptions,
} from './http-transport.ts'
import { createJsonCalls, type JsonResult, type UploadOptions } from './json-calls.ts'

export interface HttpClientOptions extends TransportOptions {
  /** Largest body the JSON helpers and download() read into memory; default 10 MiB. */
  maxResponseBytes?: number
}

export interface RequestOptions extends CallOptions {
  method?: HttpMethod
  /** A Readable is streamed with backpressure and never retried. */
  body?: string | Uint8Array | Readable
}

/**
 * The outgoing HTTP client.
 * - The JSON helpers and upload() answer `{ ok, status, data, error }` and never throw for HTTP
 *   or network trouble (no answer at all: status 0); they throw only on programmer errors
 *   (a relative path without baseUrl, signing a streamed body).
 * - request(), download() and downloadTo() throw HttpClientError instead: their answer is a
 *   stream or a file, which has no useful "empty" value.
 */
export interface HttpClient {
  getJson<T>(path: string, options?: CallOptions): Promise<JsonResult<T>>
  deleteJson<T>(path: string, options?: CallOptions): Promise<JsonResult<T>>
  postJson<T>(path: string, body: unknown, options?: CallOptions): Promise<JsonResult<T>>
  putJson<T>(path: string, body: unknown, options?: CallOptions): Promise<JsonResult<T>>
  patchJson<T>(path: string, body: unknown, options?: CallOptions): Promise<JsonResult<T>>
  /** Streams `source` as the body at constant memory and reads the JSON answer; never retried. */
  upload<T>(path: string, source: Readable, options?: UploadOptions): Promise<JsonResult<T>>
  /** The whole file in memory (at most maxBytes) with its name and MIME type from the headers. */
  download(path: string, options?: DownloadOptions): Promise<Download>
  /** Streams the file to a path or a Writable at constant memory; returns name, type and size. */
  downloadTo(
    path: string,
    destination: string | Writable,
    options?: CallOptions,
  ): Promise<DownloadInfo>
  /**
   * The raw answer, any status, body unread: the caller must read it or `body.dump()` it.
   * The timeout covers the wait for the headers.
   */
  request(path: string, options?: RequestOptions): Promise<HttpResponse>
  /** The absolute URL a path resolves to. */
  urlFor(path: string, query?: CallOptions['query']): string
  /** Closes the pooled sockets. */
  close(): Promise<void>
}

/**
 * An HTTP client on one undici Agent: keep-alive sockets pooled per origin, per-call timeouts,
 * retries with exponential backoff and full jitter for idempotent methods only, the current
 * request id sent as X-Request-ID on every call, and optional HMAC signing of every call.
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const transport = createTransport(options)
  const maxResponseBytes = options.maxResponseBytes ?? 10 * 1024 * 1024
  const json = createJsonCalls(transport, maxResponseBytes)
  const downloads = createDownloads(transport, maxResponseBytes)
  return {
    getJson: json.getJson,
    deleteJson: json.deleteJson,
    postJson: json.postJson,
    putJson: json.putJson,
    patchJson: json.patchJson,
    upload: json.upload,
    download: downloads.download,
    downloadTo: downloads.downloadTo,
    request(path, requestOptions = {}) {
      const { method = 'GET', ...rest } = requestOptions
      return transport.send(path, { ...rest, method }, 'headers', async (response) => response)
    },
    urlFor: (path, query) => transport.resolve(path, query).href,
    close: () => transport.close(),
  }
}
