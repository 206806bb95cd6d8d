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

export interface MemoryPubSubOptions {
  /** Messages kept per channel for replay. Default 100. */
  historyLimit?: number
  /** A channel's history is dropped this long after its last publish. Default 3600. */
  historyTtlSeconds?: number
  /** Channels with a history kept at once; past it the least recently published goes. Default 10,000. */
  maxHistoryChannels?: number
  clock?: { now(): number }
  onHandlerError?: HandlerErrorReporter
}

interface History {
  messages: PubSubMessage[]
  lastMs: number
  lastSeq: number
  expiresAtMs: number
}

/**
 * The embedded-mode pub/sub: one process, delivery in the publishing call. The history of a
 * channel is a bounded buffer of its last `historyLimit` messages; at most `maxHistoryChannels`
 * histories are kept (least recently published dropped first), so memory stays bounded however
 * many channels are used (one per order, say).
 */
export function createMemoryPubSub(options: MemoryPubSubOptions = {}): PubSub {
  const historyLimit = options.historyLimit ?? PUBSUB_DEFAULTS.historyLimit
  const ttlMs = (options.historyTtlSeconds ?? PUBSUB_DEFAULTS.historyTtlSeconds) * 1000
  const maxChannels = options.maxHistoryChannels ?? 10_000
  const now = options.clock?.now ?? Date.now
  for (const [name, value] of [
    ['historyLimit', historyLimit],
    ['maxHistoryChannels', maxChannels],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`${name} must be a positive integer`)
  }
  if (!(ttlMs > 0)) throw new RangeError('historyTtlSeconds must be positive')

  // Map iteration order is insertion order: re-inserting on publish keeps the least recently
  // published channel first, ready to be evicted.
  const histories = new Map<string, History>()
  const subscribers = new Map<string, Set<{ handler: MessageHandler }>>()
  let isClosed = false

  const liveHistory = (channel: string): History | undefined => {
    const history = histories.get(channel)
    if (history && history.expiresAtMs <= now()) {
      histories.delete(channel)
      return undefined
    }
    return history
  }

  const assertOpen = () => {
    if (isClosed) throw new Error('pub/sub is closed')
  }

  return {
    async publish(channel, data) {
      checkChannel(channel)
      assertOpen()
      const at = now()
      const history = liveHistory(channel) ?? {
        messages: [],
        lastMs: 0,
        lastSeq: -1,
        expiresAtMs: 0,
      }
      // Like XADD: milliseconds of the clock, a sequence within one millisecond, and never
      // lower than the last id even if the clock steps back.
      const ms = Math.max(at, history.lastMs)
      const seq = ms === history.lastMs ? history.lastSeq + 1 : 0
      const message = { id: `${ms}-${seq}`, data }
      history.lastMs = ms
      history.lastSeq = seq
      history.expiresAtMs = at + ttlMs
      history.messages.push(message)
      if (history.messages.length > historyLimit) history.messages.shift()
      histories.delete(channel)
      histories.set(channel, history)
      if (histories.size > maxChannels) {
        const oldest = histories.keys().next().value
        if (oldest !== undefined) histories.delete(oldest)
      }

      for (const subscription of [...(subscribers.get(channel) ?? [])]) {
        try {
          subscription.handler({ ...message })
        } catch (error) {
          options.onHandlerError?.(error, channel)
        }
      }
      return message.id
    },

    async subscribe(channel, handler): Promise<Unsubscribe> {
      checkChannel(channel)
      assertOpen()
      const subscription = { handler }
      let set = subscribers.get(channel)
      if (!set) {
        set = new Set()
        subscribers.set(channel, set)
      }
      set.add(subscription)
      return () => {
        const current = subscribers.get(channel)
        if (!current?.delete(subscription)) return
        if (current.size === 0) subscribers.delete(channel)
      }
    },

    async history(channel, afterId) {
      checkChannel(channel)
      checkAfterId(afterId)
      const messages = liveHistory(channel)?.messages ?? []
      return messages
        .filter((message) => afterId === undefined || compareEventIds(message.id, afterId) > 0)
        .map((message) => ({ ...message }))
    },

    async ping() {
      assertOpen()
    },

    async close() {
      isClosed = true
      subscribers.clear()
      histories.clear()
    },
  }
}
