import type { Redis } from 'ioredis'
import { AppError } from '../../shared/errors.ts'
import { toUnavailableError } from '../redis/redis-errors.ts'
import { defineScript } from '../redis/redis-script.ts'
import {
  checkAfterId,
  checkChannel,
  compareEventIds,
  type HandlerErrorReporter,
  type MessageHandler,
  PUBSUB_DEFAULTS,
  type PubSub,
  type PubSubMessage,
  type Unsubscribe,
} from './pubsub.ts'

export interface RedisPubSubOptions {
  /** The shared command connection (from `createRedis`): publishes and reads the history. */
  publisher: Redis
  /**
   * A connection of its own: SUBSCRIBE puts a connection in subscriber mode, where it can send
   * nothing else. Neither connection is owned here; the container closes them.
   */
  subscriber: Redis
  /** APP_NAME: channel `c` is published as `${prefix}:c`, its history kept at `${prefix}:events:c`. */
  prefix: string
  /** Messages kept per channel (stream MAXLEN). Default 100. */
  historyLimit?: number
  /** The history stream expires this long after its last publish. Default 3600. */
  historyTtlSeconds?: number
  onHandlerError?: HandlerErrorReporter
}

/**
 * XADD assigns the id (Redis time, strictly increasing per stream), trims the stream to its
 * limit, refreshes its TTL and PUBLISHes `<id>\n<data>`, all in one script: subscribers and the
 * history see the same id, and no message is published without being recorded.
 */
const publishRecorded = defineScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], id .. '\\n' .. ARGV[3])
return id
`)

const UNAVAILABLE = 'PUBSUB_UNAVAILABLE'
/** Tries at reading a reconnected channel's gap (a loaded Redis may time out), 100 ms × n apart. */
const GAP_FILL_ATTEMPTS = 5

/**
 * The distributed-mode pub/sub on Redis: PUBLISH/SUBSCRIBE for delivery to every replica, and a
 * capped stream per channel (XADD MAXLEN, with a TTL) for the history. Local subscribers share
 * one SUBSCRIBE per channel: the first one sends it, the last one's unsubscribe sends
 * UNSUBSCRIBE. Redis pub/sub keeps nothing for a disconnected subscriber: when the subscriber
 * connection comes back, each channel is subscribed again and what was published after its last
 * delivered message is read from the history and delivered first (up to `historyLimit`), so
 * subscribers see no gap, no duplicate and no reordering.
 */
export function createRedisPubSub(options: RedisPubSubOptions): PubSub {
  const { publisher, subscriber, prefix } = options
  const historyLimit = options.historyLimit ?? PUBSUB_DEFAULTS.historyLimit
  const ttlMs = Math.round((options.historyTtlSeconds ?? PUBSUB_DEFAULTS.historyTtlSeconds) * 1000)
  if (!Number.isInteger(historyLimit) || historyLimit < 1)
    throw new RangeError('historyLimit must be a positive integer')
  if (!(ttlMs > 0)) throw new RangeError('historyTtlSeconds must be positive')

  const channelKey = (channel: string) => `${prefix}:${channel}`
  const historyKey = (channel: string) => `${prefix}:events:${channel}`

  /** Local subscriptions by Redis channel; `ready` settles when SUBSCRIBE was answered. */
  const channels = new Map<string, ChannelEntry>()
  let isClosed = false

  /** Hands `message` to the channel's subscribers once, in id order. */
  const dispatch = (entry: ChannelEntry, message: PubSubMessage) => {
    if (entry.lastId !== undefined && compareEventIds(message.id, entry.lastId) <= 0) return
    entry.lastId = message.id
    for (const subscription of [...entry.subscriptions]) {
      try {
        subscription.handler({ ...message })
      } catch (error) {
        options.onHandlerError?.(error, entry.channel)
      }
    }
  }

  const onMessage = (redisChannel: string, raw: string) => {
    const entry = channels.get(redisChannel)
    if (!entry) return
    const newline = raw.indexOf('\n')
    if (newline < 0) return
    const message = { id: raw.slice(0, newline), data: raw.slice(newline + 1) }
    if (entry.gapFill) entry.gapFill.push(message)
    else dispatch(entry, message)
  }
  subscriber.on('message', onMessage)

  /**
   * After the subscriber connection came back: subscribe again (answered, so later messages
   * arrive live), read from the history what was published after the last message seen, then
   * what arrived live meanwhile; each message once, in id order.
   */
  const fillGap = async (redisChannel: string, entry: ChannelEntry) => {
    entry.fillGeneration += 1
    const generation = entry.fillGeneration
    entry.gapFill ??= []
    const isCurrent = () =>
      !isClosed && generation === entry.fillGeneration && channels.get(redisChannel) === entry
    for (let attempt = 1; ; attempt++) {
      try {
        await subscriber.subscribe(redisChannel)
        const missed =
          entry.lastId === undefined
            ? []
            : await publisher.xrange(
                historyKey(entry.channel),
                `(${entry.lastId}`,
                '+',
                'COUNT',
                historyLimit,
              )
        // Cut again meanwhile: the next fill (which keeps the waiting messages) takes over.
        if (!isCurrent()) return
        for (const [id, fields] of missed) dispatch(entry, { id, data: fieldValue(fields) })
        break
      } catch (error) {
        if (!isCurrent()) return
        if (attempt >= GAP_FILL_ATTEMPTS) {
          options.onHandlerError?.(
            toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub'),
            redisChannel,
          )
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt))
        if (!isCurrent()) return
      }
    }
    const live = entry.gapFill ?? []
    entry.gapFill = undefined
    for (const message of live) dispatch(entry, message)
  }
  let wasDisconnected = false
  const onClose = () => {
    wasDisconnected = true
  }
  const onReady = () => {
    if (!wasDisconnected) return
    wasDisconnected = false
    for (const [redisChannel, entry] of channels) void fillGap(redisChannel, entry)
  }
  subscriber.on('close', onClose)
  subscriber.on('ready', onReady)

  const assertOpen = () => {
    if (isClosed) throw new Error('pub/sub is closed')
  }

  const unsubscribeQuietly = (redisChannel: string) => {
    subscriber.unsubscribe(redisChannel).catch((error: unknown) => {
      // The connection dropped: ioredis will not subscribe to it again, nothing is lost.
      options.onHandlerError?.(
        toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub'),
        redisChannel,
      )
    })
  }

  return {
    async publish(channel, data) {
      checkChannel(channel)
      assertOpen()
      try {
        const id = await publishRecorded.run(
          publisher,
          [historyKey(channel)],
          [historyLimit, ttlMs, data, channelKey(channel)],
        )
        return String(id)
      } catch (error) {
        throw toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub')
      }
    },

    async subscribe(channel, handler): Promise<Unsubscribe> {
      checkChannel(channel)
      assertOpen()
      const redisChannel = channelKey(channel)
      let entry = channels.get(redisChannel)
      if (!entry) {
        entry = {
          channel,
          subscriptions: new Set(),
          ready: subscriber.subscribe(redisChannel),
          lastId: undefined,
          gapFill: undefined,
          fillGeneration: 0,
        }
        channels.set(redisChannel, entry)
      }
      const subscription = { handler }
      entry.subscriptions.add(subscription)
      const current = entry
      const unsubscribe = () => {
        if (!current.subscriptions.delete(subscription)) return
        if (current.subscriptions.size > 0 || channels.get(redisChannel) !== current) return
        channels.delete(redisChannel)
        // Commands on one connection run in order: a SUBSCRIBE sent after this UNSUBSCRIBE (a
        // new first subscriber) still leaves the channel subscribed.
        unsubscribeQuietly(redisChannel)
      }
      try {
        await current.ready
      } catch (error) {
        unsubscribe()
        throw toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub')
      }
      return unsubscribe
    },

    async history(channel, afterId) {
      checkChannel(channel)
      checkAfterId(afterId)
      try {
        const entries = await publisher.xrange(
          historyKey(channel),
          afterId === undefined ? '-' : `(${afterId}`,
          '+',
          'COUNT',
          historyLimit,
        )
        return entries.map(([id, fields]): PubSubMessage => ({ id, data: fieldValue(fields) }))
      } catch (error) {
        throw toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub')
      }
    },

    async ping() {
      if (subscriber.status !== 'ready') {
        throw new AppError(
          'unavailable',
          UNAVAILABLE,
          `Redis pub/sub subscriber is ${subscriber.status}`,
        )
      }
      try {
        await publisher.ping()
      } catch (error) {
        throw toUnavailableError(error, UNAVAILABLE, 'Redis pub/sub')
      }
    },

    async close() {
      if (isClosed) return
      isClosed = true
      subscriber.off('message', onMessage)
      subscriber.off('close', onClose)
      subscriber.off('ready', onReady)
      const subscribed = [...channels.keys()]
      channels.clear()
      if (subscribed.length > 0 && subscriber.status === 'ready') {
        await subscriber.unsubscribe(...subscribed).catch(() => undefined)
      }
    },
  }
}

interface ChannelEntry {
  channel: string
  subscriptions: Set<{ handler: MessageHandler }>
  ready: Promise<unknown>
  /** The id of the last message handed to the subscribers. */
  lastId: string | undefined
  /** While a gap after a reconnect is read from the history, live messages wait here. */
  gapFill: PubSubMessage[] | undefined
  /** Counts the reconnects that started a gap fill; only the latest one delivers. */
  fillGeneration: number
}

function fieldValue(fields: string[]): string {
  const index = fields.indexOf('d')
  return index >= 0 && index % 2 === 0 ? (fields[index + 1] ?? '') : ''
}
