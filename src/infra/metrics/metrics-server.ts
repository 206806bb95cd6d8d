import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Metrics } from './metrics.ts'

export interface MetricsServer {
  readonly port: number
  close(): Promise<void>
}

/**
 * A bare listener for processes that serve no HTTP API (worker, scheduler): GET /metrics in
 * Prometheus text format and GET /health, so they can be scraped and probed like the API.
 */
export async function serveMetrics(
  metrics: Metrics,
  host: string,
  port: number,
): Promise<MetricsServer> {
  // Not imported: see node-server.ts (an ES import of node:http loads undici).
  const server = process.getBuiltinModule('node:http').createServer((request, response) => {
    const path = request.url?.split('?')[0]
    if (request.method === 'GET' && path === '/metrics') {
      metrics.render().then(
        (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        () => response.writeHead(500).end(),
      )
    } else if (request.method === 'GET' && path === '/health') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    } else {
      response
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"detail":"Not Found","code":"NOT_FOUND"}')
    }
  })
  server.listen(port, host)
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
