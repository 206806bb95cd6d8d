/**
 * Realtime fan-out: what one replica publishes reaches the subscribers of every replica. Two
 * implementations pass one contract suite: in process (embedded mode) and Redis pub/sub
 * (distributed mode). Channel names given here are relative: the Redis implementation prefixes
 * them with `${APP_NAME}:`.
 *
 * Every published message is also kept in a bounded per-channel history, so a client that
 * reconnects (SSE's Last-Event-ID) can be sent what it missed. Message ids have the form of Redis
 * stream ids, `<milliseconds>-<sequence>`, and increase strictly within a channel.
 */
export interface PubSub {
  /**
   * Records `data` in the channel's history and delivers it to every current subscriber of the
   * channel; resolves to the message id.
   */
  publish(channel: string, data: string): Promise<string>
  /**
   * Calls `handler` for every message published to `channel` once this resolves. The returned
   * function unsubscribes at once (later messages are not delivered) and may be called again.
   */
  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe>
  /**
   * The recorded messages with an id after `afterId` (every recorded one when it is undefined),
   * oldest first. The history keeps the last `historyLimit` messages of a channel for
   * `historyTtlSeconds` after its last publish.
   */
  history(channel: string, afterId?: string): Promise<PubSubMessage[]>
  /** Answers when the transport does; throws otherwise (used by /ready). */
  ping(): Promise<void>
  /** Drops every subscription; the connections belong to the container. */
  close(): Promise<void>
}

/** One message as subscribers and the history see it. */
export interface PubSubMessage {
  /** `<milliseconds>-<sequence>`, strictly increasing within a channel. */
  id: string
  data: string
}

export type MessageHandler = (message: PubSubMessage) => void

/** Ends one subscription; calling it again does nothing. */
export type Unsubscribe = () => void

/** Called when a handler throws: the message still reaches the other subscribers. */
export type HandlerErrorReporter = (error: unknown, channel: string) => void

/** Shared defaults of both implementations. */
export const PUBSUB_DEFAULTS = {
  historyLimit: 100,
  historyTtlSeconds: 3600,
} as const

const CHANNEL = /^[A-Za-z0-9_.:-]{1,200}$/
const EVENT_ID = /^(\d{1,15})-(\d{1,15})$/

/** Throws a RangeError for a channel name outside letters, digits and `_.:-` (1..200). */
export function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) {
    throw new RangeError(
      `invalid channel name ${JSON.stringify(channel.slice(0, 50))}: expected 1..200 of A-Z a-z 0-9 _ . : -`,
    )
  }
}

/** True when `value` has the form of a message id (`<milliseconds>-<sequence>`). */
export function isEventId(value: string): boolean {
  return EVENT_ID.test(value)
}

/** Orders two message ids: negative when `a` came first, 0 when equal, positive otherwise. */
export function compareEventIds(a: string, b: string): number {
  const [msA, seqA] = parseEventId(a)
  const [msB, seqB] = parseEventId(b)
  return msA === msB ? seqA - seqB : msA - msB
}

function parseEventId(id: string): [number, number] {
  const match = EVENT_ID.exec(id)
  if (!match) throw new RangeError(`invalid message id ${JSON.stringify(id.slice(0, 40))}`)
  return [Number(match[1]), Number(match[2])]
}

/** Throws a RangeError unless `afterId` is undefined or a message id. */
export function checkAfterId(afterId: string | undefined): void {
  if (afterId !== undefined && !isEventId(afterId)) parseEventId(afterId)
}
