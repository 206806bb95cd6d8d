/**
 * The ceiling: a bare node:http server answering GET /health with the same 15 bytes servekit
 * and the peer send (`{"status":"ok"}`), nothing else. `node bench/bare-server.ts <port>`
 */
import { createServer } from 'node:http'

const port = Number(process.argv[2] ?? '8003')
const body = Buffer.from('{"status":"ok"}')
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) }

createServer((request, response) => {
  if (request.url === '/health') {
    response.writeHead(200, headers)
    response.end(body)
  } else {
    response.writeHead(404)
    response.end()
  }
}).listen(port, '127.0.0.1')
process.once('SIGTERM', () => process.exit(0))
