import { compareEventIds, type PubSub, type PubSubMessage } from '../../infra/pubsub/index.ts'

export interface ChannelFeedOptions {
  /** Replay the recorded messages after this id (a client's Last-Event-ID) before live ones. */
  afterId?: string | undefined
  /** Without `afterId`: 'all' replays the whole recorded history first, 'none' nothing. */
  replay?: 'all' | 'none'
}

/** A channel subscribed and its history read, waiting for `start` to send anything. */
export interface ChannelFeed {
  /**
   * Sends the replayed history, then what arrived meanwhile, then every live message, each once
   * and in id order (the overlap between history and live messages is removed by id).
   */
  start(send: (message: PubSubMessage) => void): void
  /** Unsubscribes at once; may be called again. */
  close(): void
}

/**
 * Opens a feed of `channel` for one client (an SSE stream, a chat socket): subscribes first, then
 * reads the history, so nothing published in between is lost. Rejects (the pub/sub's
 * `unavailable` error) with nothing left subscribed when either step fails, so the caller can
 * refuse the client before answering it.
 */
export async function openChannelFeed(
  pubsub: PubSub,
  channel: string,
  { afterId, replay = 'none' }: ChannelFeedOptions = {},
): Promise<ChannelFeed> {
  let lastSentId = afterId
  let send: ((message: PubSubMessage) => void) | undefined
  const pending: PubSubMessage[] = []

  const deliver = (message: PubSubMessage) => {
    if (lastSentId !== undefined && compareEventIds(message.id, lastSentId) <= 0) return
    lastSentId = message.id
    send?.(message)
  }

  const unsubscribe = await pubsub.subscribe(channel, (message) => {
    if (send) deliver(message)
    else pending.push(message)
  })
  let history: PubSubMessage[]
  try {
    history =
      afterId !== undefined
        ? await pubsub.history(channel, afterId)
        : replay === 'all'
          ? await pubsub.history(channel)
          : []
  } catch (error) {
    unsubscribe()
    throw error
  }

  return {
    start(sender) {
      if (send) throw new Error('the channel feed has already started')
      send = sender
      for (const message of history) deliver(message)
      history = []
      for (const message of pending.splice(0)) deliver(message)
    },
    close: unsubscribe,
  }
}
