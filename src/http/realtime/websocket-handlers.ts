import type { FastifyBaseLogger } from 'fastify'
import type { PubSub } from '../../infra/pubsub/index.ts'
import { isAppError } from '../../shared/errors.ts'
import type { Authenticator } from '../plugins/authenticate.ts'
import { type ChannelFeed, openChannelFeed } from './channel-feed.ts'
import type { Peer, RealtimeSocket } from './websocket-peers.ts'

/*
 * What each WebSocket route does with its socket. The messages are JSON objects with a `type`;
 * see README.md in this folder for the whole protocol.
 */

/** The pub/sub channel of the chat lobby; a room's channel is `chat:<room>` (`chatChannel`). */
export const CHAT_CHANNEL = 'chat'

/** Messages one chat socket may send per second; each goes to every chat socket everywhere. */
export const CHAT_MESSAGES_PER_SECOND = 20

type Log = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>

/** /ws/echo: every message comes back as it was sent, text as text and binary as binary. */
export function echo(socket: RealtimeSocket, peer: Peer): void {
  socket.on('message', (data, isBinary) => {
    peer.send(isBinary ? data : data.toString('utf8'), isBinary)
  })
}

/**
 * /ws/json: `{"type":"ping"}` gets `{"type":"pong"}`, any other JSON value comes back as
 * `{"type":"echo","data":…}`, and a message that is not JSON gets an error message; the socket
 * stays open either way.
 */
export function jsonPingPong(socket: RealtimeSocket, peer: Peer): void {
  socket.on('message', (data, isBinary) => {
    if (isBinary) {
      peer.sendJson(errorMessage('WS_BINARY_UNSUPPORTED', 'Send JSON in text messages'))
      return
    }
    let value: unknown
    try {
      value = JSON.parse(data.toString('utf8'))
    } catch (error) {
      peer.sendJson(errorMessage('WS_INVALID_JSON', `Invalid JSON: ${(error as Error).message}`))
      return
    }
    if (isObject(value) && value.type === 'ping') peer.sendJson({ type: 'pong' })
    else peer.sendJson({ type: 'echo', data: value })
  })
}

/** The pub/sub channel of a chat room: `chat` for the lobby (no room), `chat:<room>` otherwise. */
export function chatChannel(room: string | undefined): string {
  return room === undefined ? CHAT_CHANNEL : `${CHAT_CHANNEL}:${room}`
}

/**
 * Adds the message id to a chat event as its first field, without parsing it again for every
 * socket: chat events are JSON objects; anything else is wrapped as `{"id","data"}`.
 */
export function chatEventWithId(id: string, data: string): string {
  if (data.startsWith('{"')) return `{"id":${JSON.stringify(id)},${data.slice(1)}`
  return JSON.stringify({ id, data })
}

/**
 * /ws/chat/{client_id}?room=&last_event_id=: `join` when the socket opens, `message` for every
 * text it sends and `leave` when it closes, broadcast through the room's pub/sub channel to every
 * chat socket of the room on every replica. Each event carries its message id; a client that
 * reconnects with `last_event_id` is first sent what the room recorded after it, then live events.
 */
export function chat(
  socket: RealtimeSocket,
  peer: Peer,
  {
    clientId,
    room,
    lastEventId,
    pubsub,
    log,
  }: {
    clientId: string
    room: string | undefined
    lastEventId: string | undefined
    pubsub: PubSub
    log: Log
  },
): void {
  const channel = chatChannel(room)
  const publish = (event: Record<string, unknown>) =>
    pubsub.publish(
      channel,
      JSON.stringify({ ...event, client_id: clientId, at: new Date().toISOString() }),
    )

  // Messages may arrive before the subscription is ready: each waits for `joined`.
  let feed: ChannelFeed | undefined
  const joined = openChannelFeed(pubsub, channel, { afterId: lastEventId })
    .then(async (opened) => {
      feed = opened
      if (!peer.isOpen) {
        opened.close()
        return false
      }
      opened.start((message) => {
        peer.send(chatEventWithId(message.id, message.data))
      })
      await publish({ type: 'join' })
      return true
    })
    .catch((error: unknown) => {
      log.warn({ err: error, peer: peer.id }, 'chat unavailable: closing the socket')
      peer.close(1011, 'chat unavailable')
      return false
    })

  // A fixed one-second window: one client cannot make every replica fan out without bound.
  let windowStartMs = 0
  let inWindow = 0
  socket.on('message', (data, isBinary) => {
    const now = Date.now()
    if (now - windowStartMs >= 1000) {
      windowStartMs = now
      inWindow = 0
    }
    inWindow += 1
    if (inWindow > CHAT_MESSAGES_PER_SECOND) {
      peer.sendJson(
        errorMessage('CHAT_RATE_LIMITED', `At most ${CHAT_MESSAGES_PER_SECOND} messages a second`),
      )
      return
    }
    void joined.then(async (isJoined) => {
      if (!isJoined) return
      if (isBinary) {
        peer.sendJson(errorMessage('WS_BINARY_UNSUPPORTED', 'Chat messages are text'))
        return
      }
      await publish({ type: 'message', text: data.toString('utf8') }).catch((error: unknown) => {
        log.warn({ err: error, peer: peer.id }, 'chat message not sent')
        peer.sendJson(errorMessage('CHAT_UNAVAILABLE', 'The message could not be sent'))
      })
    })
  })

  socket.on('close', () => {
    feed?.close()
    void joined.then(async (isJoined) => {
      feed?.close()
      if (!isJoined) return
      await publish({ type: 'leave' }).catch((error: unknown) => {
        log.warn({ err: error, peer: peer.id }, 'chat leave not sent')
      })
    })
  })
}

/**
 * /ws/authenticated?token=: closes with 1008 when the token is missing, invalid, revoked or
 * expires while connected; otherwise `welcome` with the user id, then every text message comes
 * back as `echo` with the user id.
 */
export function authenticated(
  socket: RealtimeSocket,
  peer: Peer,
  { token, auth, log }: { token: string | undefined; auth: Authenticator; log: Log },
): void {
  let expiry: NodeJS.Timeout | undefined
  socket.on('close', () => clearTimeout(expiry))

  const principal = (async () => {
    if (!token) {
      peer.close(1008, 'missing token')
      return undefined
    }
    try {
      const found = await auth.authenticate(token)
      if (!peer.isOpen) return undefined
      peer.sendJson({ type: 'welcome', user_id: found.userId })
      // setTimeout takes at most 2^31-1 ms (24.8 days); a longer token closes then instead.
      const remainingMs = Math.min(found.expiresAt * 1000 - Date.now(), 2 ** 31 - 1)
      expiry = setTimeout(() => peer.close(1008, 'token expired'), Math.max(0, remainingMs))
      expiry.unref()
      return found
    } catch (error) {
      if (isAppError(error) && error.kind === 'unavailable') {
        log.warn({ err: error, peer: peer.id }, 'cannot check the token: closing the socket')
        peer.close(1013, 'try again later')
      } else {
        peer.close(1008, 'invalid token')
      }
      return undefined
    }
  })()

  socket.on('message', (data, isBinary) => {
    void principal.then((found) => {
      if (!found) return
      if (isBinary) {
        peer.sendJson(errorMessage('WS_BINARY_UNSUPPORTED', 'Send text messages'))
        return
      }
      peer.sendJson({ type: 'echo', user_id: found.userId, text: data.toString('utf8') })
    })
  })
}

function errorMessage(code: string, detail: string) {
  return { type: 'error', code, detail }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
