import type { Socket } from 'node:net'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import websocket from '@fastify/websocket'
import Type from 'typebox'
import type { Metrics } from '../../infra/metrics/index.ts'
import type { PubSub } from '../../infra/pubsub/index.ts'
import type { Authenticator } from '../plugins/authenticate.ts'
import { clearHandlerTimer } from '../plugins/request-lifecycle.ts'
import type { App } from '../server.ts'
import type { SseStreams } from './sse.ts'
import { authenticated, chat, chatChannel, echo, jsonPingPong } from './websocket-handlers.ts'
import {
  createPeerRegistry,
  DEFAULT_WEBSOCKET_LIMITS,
  type PeerRegistry,
  type RealtimeSocket,
  type WebSocketLimits,
} from './websocket-peers.ts'

export interface RealtimeOptions {
  pubsub: PubSub
  auth: Authenticator
  /** The server's SSE streams (shared with modules that stream, such as orders). */
  sse: SseStreams
  limits?: Partial<WebSocketLimits>
  /** Where the open WebSocket and SSE connection gauges are registered. */
  metrics?: Pick<Metrics, 'gauge'>
}

interface RealtimeRoutesOptions extends Omit<RealtimeOptions, 'limits'> {
  peers: PeerRegistry
}

/** An upgrade request no WebSocket route took is answered over HTTP; its socket goes after this. */
const UNUPGRADED_SOCKET_IDLE_MS = 5000

/**
 * Adds WebSocket support to `app` itself and registers the realtime routes. Call it before the
 * other routes: the WebSocket plugin's hooks then reach every route, so an upgrade request to a
 * route without a WebSocket handler is answered and its socket closed instead of left open.
 */
export async function registerRealtime(app: App, options: RealtimeOptions): Promise<void> {
  const limits = { ...DEFAULT_WEBSOCKET_LIMITS, ...options.limits }
  const peers = createPeerRegistry(limits, app.log)
  const { sse } = options
  options.metrics?.gauge({
    name: 'websocket_connections',
    help: 'Open WebSocket connections.',
    collect() {
      this.set(peers.size)
    },
  })
  options.metrics?.gauge({
    name: 'sse_connections',
    help: 'Open server-sent event streams.',
    collect() {
      this.set(sse.size)
    },
  })

  await app.register(websocket, {
    // No per-message compression: it costs CPU and memory per socket and opens the server to
    // compression bombs.
    options: { maxPayload: limits.maxPayloadBytes, perMessageDeflate: false },
    errorHandler(error, socket, request) {
      const code = (error as { code?: string }).code
      if (code?.startsWith('WS_ERR_')) {
        // A malformed frame or an oversized message: ws has already sent the close frame
        // (1002, 1007 or 1009) and ends this socket; the others are untouched.
        request.log.info({ err: error, code }, 'websocket protocol error: socket closed')
        return
      }
      request.log.error({ err: error }, 'websocket handler failed')
      ;(socket as RealtimeSocket).close(1011, 'internal error')
    },
    preClose: async () => {
      await peers.closeAll()
    },
  })
  // Node hands an upgrade request's socket over and forgets it; ws clears this timeout when it
  // takes the socket, so only sockets answered over HTTP (a route registered before this one)
  // are closed by it.
  app.server.on('upgrade', (_request, socket: Socket) => {
    socket.setTimeout(UNUPGRADED_SOCKET_IDLE_MS, () => socket.destroy())
  })
  app.addHook('preClose', async () => {
    options.sse.closeAll()
  })
  await app.register(realtimeRoutes, { ...options, peers })
}

const ChatParamsSchema = Type.Object({
  client_id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
})
const RoomSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })
const EventIdSchema = Type.String({ pattern: '^[0-9]{1,15}-[0-9]{1,15}$' })
const ChatQuerySchema = Type.Object({
  room: Type.Optional(RoomSchema),
  last_event_id: Type.Optional(EventIdSchema),
})
const ChatStreamQuerySchema = Type.Object({ room: Type.Optional(RoomSchema) })
const TokenQuerySchema = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 4096 })),
})
const HeartbeatQuerySchema = Type.Object({
  interval_ms: Type.Integer({ minimum: 100, maximum: 60_000, default: 1000 }),
})
const EventStreamResponse = {
  description: 'A text/event-stream that stays open',
  content: { 'text/event-stream': { schema: Type.String() } },
}

/**
 * WebSocket routes (/ws/echo, /ws/json, /ws/chat/{client_id}, /ws/authenticated), /sse/chat
 * and /sse/heartbeat. Every socket is bounded (message size, queued bytes, heartbeat); a protocol
 * error or an oversized message closes that socket only. At shutdown sockets get 1001 and
 * event streams end, before the server waits for its connections.
 */
const realtimeRoutes: FastifyPluginAsyncTypebox<RealtimeRoutesOptions> = async (
  app,
  { pubsub, auth, sse, peers },
) => {
  // A WebSocket request never completes as HTTP (the socket is taken over), so the handler
  // timeout set for every request would stay armed for its full length, holding the request.
  // Here, not on the root: only these routes pay for the hook.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.ws) clearHandlerTimer(reply)
    done()
  })

  app.get('/ws/echo', { websocket: true }, (socket: RealtimeSocket) => {
    echo(socket, peers.add(socket, 'echo'))
  })

  app.get('/ws/json', { websocket: true }, (socket: RealtimeSocket) => {
    jsonPingPong(socket, peers.add(socket, 'json'))
  })

  app.get(
    '/ws/chat/:client_id',
    { websocket: true, schema: { params: ChatParamsSchema, querystring: ChatQuerySchema } },
    (socket: RealtimeSocket, request) => {
      chat(socket, peers.add(socket, 'chat'), {
        clientId: request.params.client_id,
        room: request.query.room,
        lastEventId: request.query.last_event_id,
        pubsub,
        log: request.log,
      })
    },
  )

  app.get(
    '/ws/authenticated',
    { websocket: true, schema: { querystring: TokenQuerySchema } },
    (socket: RealtimeSocket, request) => {
      authenticated(socket, peers.add(socket, 'authenticated'), {
        token: request.query.token,
        auth,
        log: request.log,
      })
    },
  )

  app.get(
    '/sse/chat',
    {
      schema: {
        tags: ['realtime'],
        summary: 'A chat room as server-sent events',
        description:
          'The events of a chat room (the lobby without `room`) as /ws/chat sends them, from now ' +
          'on: each data is the chat event `{"type","client_id","text"?,"at"}` and each id its ' +
          'message id. A Last-Event-ID first replays what the room recorded after it.',
        querystring: ChatStreamQuerySchema,
        response: { 200: EventStreamResponse },
      },
    },
    async (request, reply) => {
      return sse.streamChannel(request, reply, {
        channel: chatChannel(request.query.room),
        authorize: () => {},
      })
    },
  )

  app.get(
    '/sse/heartbeat',
    {
      schema: {
        tags: ['realtime'],
        summary: 'Server-sent heartbeat events',
        description:
          'An `event: heartbeat` every `interval_ms` with `{"seq","time"}`; the id is the sequence ' +
          'number, and a Last-Event-ID resumes the count.',
        querystring: HeartbeatQuerySchema,
        response: { 200: EventStreamResponse },
      },
    },
    async (request, reply) => {
      const last = request.headers['last-event-id']
      let seq = typeof last === 'string' && /^\d{1,15}$/.test(last) ? Number(last) + 1 : 0
      const connection = sse.open(request, reply)
      const beat = () => {
        connection.send({
          id: String(seq),
          event: 'heartbeat',
          data: JSON.stringify({ seq, time: new Date().toISOString() }),
        })
        seq += 1
      }
      beat()
      const timer = setInterval(beat, request.query.interval_ms)
      connection.onClose(() => clearInterval(timer))
      return reply
    },
  )
}
