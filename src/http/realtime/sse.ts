import { PassThrough } from 'node:stream'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { isEventId, type PubSub } from '../../infra/pubsub/index.ts'
import { clearHandlerTimer } from '../plugins/request-lifecycle.ts'
import { openChannelFeed } from './channel-feed.ts'

/** One server-sent event. */
export interface SseEvent {
  id?: string
  event?: string
  data: string
}

export interface SseLimits {
  /** A comment line is sent this often so proxies and clients see a live connection. */
  keepAliveMs: number
  /** Bytes queued for one client past which it counts as a slow reader and is cut off. */
  maxBufferedBytes: number
  /** The reconnection delay suggested to EventSource clients. */
  retryMs: number
}

export const DEFAULT_SSE_LIMITS: Readonly<SseLimits> = Object.freeze({
  keepAliveMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
  retryMs: 3000,
})

/** An open event stream to one client. */
export interface SseConnection {
  readonly isOpen: boolean
  /** Queues one event; false (and the client cut off) when it has fallen too far behind. */
  send(event: SseEvent): boolean
  /** Ends the stream normally (an EventSource reconnects after `retryMs`). */
  close(): void
  /** Runs `listener` once when the stream ends, for whatever reason. */
  onClose(listener: () => void): void
}

export interface ChannelStreamOptions {
  /** The pub/sub channel to stream, e.g. `orders:<id>`. */
  channel: string
  /**
   * Runs before anything is subscribed or sent; throws (an AppError such as not_found or
   * forbidden) to refuse, and the error handler answers as for any route.
   */
  authorize: (request: FastifyRequest) => Promise<void> | void
  /**
   * Without a Last-Event-ID: 'all' sends the channel's recorded history first (a client that
   * connects late still sees what happened), 'none' only what is published from now on.
   * With a valid Last-Event-ID the recorded messages after it are always replayed first.
   */
  replay?: 'all' | 'none'
  /** The SSE event name of streamed messages; default none (EventSource's `onmessage`). */
  event?: string
}

/** Server-sent event streams of one server, tracked so shutdown can end them. */
export interface SseStreams {
  /** Starts an event stream as the reply to `request`. */
  open(request: FastifyRequest, reply: FastifyReply): SseConnection
  /**
   * Streams a pub/sub channel: authorize, subscribe, replay the history after Last-Event-ID, then
   * live messages, each with its message id as the SSE id. A closed client unsubscribes at once.
   */
  streamChannel(
    request: FastifyRequest,
    reply: FastifyReply,
    options: ChannelStreamOptions,
  ): Promise<FastifyReply>
  readonly size: number
  /** Ends every open stream (at shutdown, before the server waits for its connections). */
  closeAll(): void
}

export interface SseStreamsOptions {
  pubsub: PubSub
  limits?: Partial<SseLimits>
}

/** Formats one event; data lines are split so a newline in the data cannot end the event. */
export function formatSseEvent({ id, event, data }: SseEvent): string {
  let text = ''
  if (id !== undefined) text += `id: ${singleLine(id, 'id')}\n`
  if (event !== undefined) text += `event: ${singleLine(event, 'event')}\n`
  for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`
  return `${text}\n`
}

function singleLine(value: string, field: string): string {
  if (/[\r\n\0]/.test(value)) throw new RangeError(`an SSE ${field} cannot hold a line break`)
  return value
}

/** The client's Last-Event-ID when it is a message id; anything else is ignored. */
export function lastEventIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers['last-event-id']
  const value = typeof header === 'string' ? header.trim() : undefined
  return value !== undefined && isEventId(value) ? value : undefined
}

export function createSseStreams({ pubsub, limits = {} }: SseStreamsOptions): SseStreams {
  const { keepAliveMs, maxBufferedBytes, retryMs } = { ...DEFAULT_SSE_LIMITS, ...limits }
  const open = new Set<SseConnection>()

  const streams: SseStreams = {
    open(request, reply) {
      const log: FastifyBaseLogger = request.log
      const stream = new PassThrough()
      const closeListeners: Array<() => void> = []
      let isOpen = true
      const keepAlive = setInterval(() => {
        if (isOpen) write(': keep-alive\n\n')
      }, keepAliveMs).unref()

      // Fastify destroys the stream when the client goes away; every ending passes here once.
      stream.once('close', () => {
        // Ended without finishing the response (the client went away, or was cut off): the
        // connection cannot carry another response; let it go now.
        if (!reply.raw.writableFinished) reply.raw.destroy()
        isOpen = false
        clearInterval(keepAlive)
        open.delete(connection)
        for (const listener of closeListeners.splice(0)) {
          try {
            listener()
          } catch (error) {
            log.error({ err: error }, 'an SSE close listener failed')
          }
        }
      })

      const write = (text: string): boolean => {
        if (!isOpen) return false
        const bufferedBytes = stream.writableLength + stream.readableLength
        if (bufferedBytes > maxBufferedBytes) {
          log.warn({ bufferedBytes, url: request.url }, 'SSE client reads too slowly: cut off')
          isOpen = false
          reply.raw.destroy()
          stream.destroy()
          return false
        }
        stream.write(text)
        return true
      }

      const connection: SseConnection = {
        get isOpen() {
          return isOpen
        },
        send: (event) => write(formatSseEvent(event)),
        close() {
          if (!isOpen) return
          isOpen = false
          stream.end()
        },
        onClose(listener) {
          if (stream.closed) listener()
          else closeListeners.push(listener)
        },
      }
      open.add(connection)

      reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        // nginx would otherwise buffer the stream.
        .header('x-accel-buffering', 'no')
      // When the stream ends (at shutdown, say), so does an HTTP/1.1 connection: left idle, it
      // would hold a closing server open. HTTP/2 forbids the header (streams end on their own).
      if (request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
      reply.send(stream)
      // The first bytes send the headers at once: the client knows the stream is open.
      write(`retry: ${retryMs}\n\n`)
      // The answer has started, which is all the handler timeout waits for; a client that goes
      // away never completes the request, and the timer would hold it for its full length.
      clearHandlerTimer(reply)
      return connection
    },

    async streamChannel(request, reply, { channel, authorize, replay = 'none', event }) {
      await authorize(request)
      const feed = await openChannelFeed(pubsub, channel, {
        afterId: lastEventIdOf(request),
        replay,
      })
      const connection = streams.open(request, reply)
      connection.onClose(feed.close)
      feed.start((message) => connection.send({ id: message.id, event, data: message.data }))
      return reply
    },

    get size() {
      return open.size
    },

    closeAll() {
      for (const connection of [...open]) connection.close()
    },
  }
  return streams
}
