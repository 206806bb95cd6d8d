import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { TestContext } from 'node:test'

/** A real node:http server on a loopback port, for tests of outgoing calls. */
export interface Upstream {
  url: string
  /** TCP connections accepted so far (keep-alive reuse shows as a small number). */
  readonly connections: number
  /** Requests received so far. */
  readonly hits: number
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>
  close(): Promise<void>
}

/** Starts an upstream that answers with `handler`; closed when the test ends. */
export async function startUpstream(
  t: TestContext,
  handler: (request: IncomingMessage, response: ServerResponse) => void | Promise<void>,
): Promise<Upstream> {
  let connections = 0
  const requests: Upstream['requests'] = []
  const server = createServer((request, response) => {
    requests.push({
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
    })
    void Promise.resolve(handler(request, response)).catch((error: unknown) => {
      response.destroy(error as Error)
    })
  })
  server.keepAliveTimeout = 10_000
  server.on('connection', () => {
    connections++
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const close = async () => {
    if (!server.listening) return
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  }
  t.after(close)
  return {
    url: `http://127.0.0.1:${address.port}`,
    get connections() {
      return connections
    },
    get hits() {
      return requests.length
    },
    requests,
    close,
  }
}

/** Reads a request body as text. */
export async function bodyText(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  })
  response.end(text)
}
