import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { filenameFromContentDisposition, safeFilename } from './content-disposition.ts'
import { HttpClientError } from './http-client-error.ts'
import type { CallOptions, HttpResponse, Transport } from './http-transport.ts'
import { readBody } from './json-calls.ts'

/** What the headers say about a downloaded file. */
export interface DownloadInfo {
  /** From Content-Disposition (filename* preferred), else the URL's last segment, else "download". */
  filename: string
  /** The media type of Content-Type without parameters, lower case; application/octet-stream if absent. */
  mimeType: string
  /** Bytes received. */
  size: number
}

export interface Download extends DownloadInfo {
  bytes: Buffer
}

export interface DownloadOptions extends CallOptions {
  /** download() refuses a larger body (kind too_large); default: the client's maxResponseBytes. */
  maxBytes?: number
}

/** Downloads into memory (bounded) or streams to a file or Writable (constant memory). */
export function createDownloads(transport: Transport, maxResponseBytes: number) {
  const where = (path: string, options: CallOptions) => {
    const url = transport.resolve(path, options.query)
    return { method: 'GET', url: url.origin + url.pathname, pathname: url.pathname }
  }

  return {
    /** The whole file in memory, at most `maxBytes`; throws HttpClientError on any failure. */
    download(path: string, options: DownloadOptions = {}): Promise<Download> {
      const at = where(path, options)
      return transport.send(path, { ...options, method: 'GET' }, 'whole', async (response) => {
        await refuseUnlessOk(response, at)
        const bytes = await readBody(response, options.maxBytes ?? maxResponseBytes, at)
        return { ...describe(response, at.pathname), size: bytes.length, bytes }
      })
    },

    /**
     * Streams the body to `destination` (a file path, or a Writable, which is ended) with
     * backpressure, so memory stays constant whatever the size. A partly written file is removed
     * on failure. Retried only before any byte is written; throws HttpClientError on failure.
     */
    downloadTo(
      path: string,
      destination: string | Writable,
      options: CallOptions = {},
    ): Promise<DownloadInfo> {
      const at = where(path, options)
      return transport.send(path, { ...options, method: 'GET' }, 'headers', async (response) => {
        await refuseUnlessOk(response, at)
        let size = 0
        const count = async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length
            yield chunk
          }
        }
        const target =
          typeof destination === 'string' ? createWriteStream(destination) : destination
        try {
          await pipeline(response.body, count, target)
        } catch (error) {
          if (typeof destination === 'string') await rm(destination, { force: true })
          throw new HttpClientError(
            options.signal?.aborted ? 'aborted' : 'network',
            `GET ${at.url}: the download broke off after ${size} bytes: ${(error as Error).message}`,
            { status: response.status, ...at, attempts: response.attempts },
            { cause: error },
          )
        }
        return { ...describe(response, at.pathname), size }
      })
    },
  }
}

async function refuseUnlessOk(
  response: HttpResponse,
  at: { method: string; url: string },
): Promise<void> {
  if (response.status >= 200 && response.status < 300) return
  let body: unknown
  try {
    body = (await readBody(response, 4096, at)).toString('utf8')
  } catch {
    body = undefined
  }
  throw new HttpClientError('http', `GET ${at.url}: upstream answered ${response.status}`, {
    status: response.status,
    ...at,
    attempts: response.attempts,
    body,
  })
}

function describe(response: HttpResponse, pathname: string): Omit<DownloadInfo, 'size'> {
  const disposition = response.headers['content-disposition']
  const contentType = response.headers['content-type']
  const fromUrl = safeFilename(safeDecode(pathname.split('/').pop() ?? ''))
  return {
    filename:
      filenameFromContentDisposition(typeof disposition === 'string' ? disposition : undefined) ??
      fromUrl ??
      'download',
    mimeType:
      (typeof contentType === 'string' ? contentType.split(';')[0]?.trim().toLowerCase() : '') ||
      'application/octet-stream',
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
