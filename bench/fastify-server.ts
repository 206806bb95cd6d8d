/**
 * The framework floor: a minimal Fastify 5 app answering GET /health with the same 15 bytes
 * (a response schema, as servekit's route has; no hooks, no logging, no plugins).
 * `node bench/fastify-server.ts <port>`
 */
import Fastify from 'fastify'

const port = Number(process.argv[2] ?? '8004')
const app = Fastify({ logger: false })
app.get(
  '/health',
  {
    schema: {
      response: {
        200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] },
      },
    },
  },
  async () => ({ status: 'ok' }),
)
await app.listen({ host: '127.0.0.1', port })
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
