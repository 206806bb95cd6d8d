import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { AppError } from '../../shared/errors.ts'

/** The slice of a pino logger the connection reports its state to. */
export type RedisLogger = Pick<Logger, 'debug' | 'info' | 'warn'>

export interface RedisConnectionOptions {
  /**
   * A command without an answer within this bound rejects ("Command timed out"), and the
   * connection is dropped and opened again, so the commands after it fail at once instead of each
   * waiting as long on a server that has stopped answering. Default 500.
   */
  commandTimeoutMs?: number
  /** Bound on one connection attempt, and on the wait for the first one at start-up. Default 3000. */
  connectTimeoutMs?: number
  /** Ceiling of the reconnect backoff. Default 2000. */
  maxReconnectDelayMs?: number
  /**
   * Resolve only once Redis answers, and fail start-up otherwise (default). `false` resolves at
   * once: commands reject until the first connection succeeds, then work.
   */
  waitForReady?: boolean
  /** Shown by CLIENT LIST; use APP_NAME. */
  connectionName?: string
}

/** One Redis connection with its owner's handle: the container closes it at shutdown. */
export interface RedisConnection {
  readonly client: Redis
  /** True while commands can be sent; false during an outage. */
  readonly isReady: boolean
  /** Sends QUIT when connected (bounded), then drops the socket and stops reconnecting. */
  close(): Promise<void>
}

const DEFAULTS = {
  commandTimeoutMs: 500,
  connectTimeoutMs: 3000,
  maxReconnectDelayMs: 2000,
} as const

/**
 * Opens a Redis connection for request-time work (cache, locks, rate limits), tuned to fail
 * fast: while Redis is down a command rejects at once instead of waiting in a queue, and a
 * command the server does not answer rejects after `commandTimeoutMs`. The client reconnects on
 * its own, forever, with capped exponential backoff and jitter.
 *
 * Not for BullMQ: its workers need `maxRetriesPerRequest: null` and a queue that waits.
 */
export async function createRedis(
  url: string,
  logger: RedisLogger,
  options: RedisConnectionOptions = {},
): Promise<RedisConnection> {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? DEFAULTS.maxReconnectDelayMs
  const where = describeUrl(url)

  // Loaded here, not at the top: a process in embedded mode never opens Redis and so never pays
  // for the driver's code (start-up time and memory).
  const { Redis } = await import('ioredis')
  const client = new Redis(url, {
    // No offline queue: a command sent while disconnected rejects at once. A queue would make
    // callers hang for the whole outage and then replay stale writes (a SET NX for a lock nobody
    // waits for any more, a cache SET older than the DEL that followed it) when Redis returns.
    enableOfflineQueue: false,
    // Commands in flight when the socket drops reject at the next reconnect attempt rather than
    // being sent again: the server may already have applied them (INCRBY twice).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Commands issued while one batch of sockets is read (the rate-limit checks and cache reads
    // of many concurrent requests) leave in one write and come back in one read: under load this
    // halves the CPU a cached read costs. A lone command waits one setImmediate, not a timer.
    enableAutoPipelining: true,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (attempt) => reconnectDelayMs(attempt, { maxMs: maxReconnectDelayMs }),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  })

  // State changes are logged once each, not once per failed reconnect attempt.
  let state: 'connecting' | 'up' | 'down' | 'closing' = 'connecting'
  let hasBeenUp = false
  boundCommands(client, commandTimeoutMs, () => {
    state = 'down'
    logger.warn({ redis: where }, 'redis stopped answering: reconnecting')
  })
  client.on('ready', () => {
    logger.info({ redis: where }, hasBeenUp ? 'redis connection restored' : 'redis connected')
    hasBeenUp = true
    state = 'up'
  })
  client.on('error', (error: Error) => {
    if (state === 'down' || state === 'closing') {
      logger.debug({ redis: where, err: error }, 'redis still unreachable')
      return
    }
    state = 'down'
    logger.warn({ redis: where, err: error }, 'redis unreachable; reconnecting')
  })
  client.on('close', () => {
    if (state !== 'up') return
    state = 'down'
    logger.warn({ redis: where }, 'redis connection lost; reconnecting')
  })

  if (options.waitForReady ?? true) {
    try {
      await waitUntilReady(client, connectTimeoutMs)
    } catch (error) {
      state = 'closing'
      client.disconnect()
      throw new AppError(
        'unavailable',
        'REDIS_UNREACHABLE',
        `Redis at ${where} did not answer within ${connectTimeoutMs} ms: ${(error as Error).message}`,
        { cause: error },
      )
    }
  }

  let closing: Promise<void> | undefined
  return {
    client,
    get isReady() {
      return client.status === 'ready'
    },
    close() {
      state = 'closing'
      closing ??= quitThenDisconnect(client, commandTimeoutMs)
      return closing
    },
  }
}

/**
 * Bounds the wait for Redis's answers by `timeoutMs` ("Command timed out"), in place of ioredis's
 * own `commandTimeout`, which arms a timer for every command (a third of the cost of a cached
 * read under load). Redis answers in order, so one check of the oldest unanswered command every
 * `timeoutMs / 5` is enough: when it has stayed oldest for `timeoutMs` and nothing at all came
 * from the server meanwhile, the server has stopped answering (paused, overloaded, a network
 * partition: the socket stays open). Then every waiting command rejects and the connection is
 * dropped: while the new one is not ready, commands reject at once (no offline queue), and it is
 * ready as soon as the server answers. A reply still arriving (a large value) is left to finish.
 *
 * A check that runs late because the event loop was busy does not fail a command whose reply is
 * already in the socket: it runs after the poll phase has read it.
 */
export function boundCommands(
  client: Redis,
  timeoutMs: number,
  onDrop: () => void = () => {},
): void {
  let lastHeardAt = performance.now()
  client.on('connect', () => {
    lastHeardAt = performance.now()
    client.stream?.on('data', () => {
      lastHeardAt = performance.now()
    })
  })
  // ioredis's queue of sent, unanswered commands (not in its typings; replaced on reconnect).
  const queued = client as unknown as { commandQueue: SentCommands }
  let oldest: SentCommand | undefined
  let oldestSince = 0
  const check = () => {
    const sent = queued.commandQueue
    const head = sent.peekFront()
    const now = performance.now()
    if (head !== oldest) {
      oldest = head
      oldestSince = now
      return
    }
    if (!head || now - oldestSince < timeoutMs || now - lastHeardAt < timeoutMs) return
    if (client.status !== 'ready') return
    const error = new Error('Command timed out')
    for (const item of sent.toArray()) item.command.reject(error)
    oldest = undefined
    onDrop()
    // Destroyed, not ended: a FIN to a server that does not answer would leave the socket
    // half-closed and the client 'ready'. The close that follows starts the reconnect.
    client.stream?.destroy()
  }
  const timer = setInterval(() => setImmediate(check), Math.max(10, timeoutMs / 5)).unref()
  client.once('end', () => clearInterval(timer))
}

interface SentCommand {
  command: { reject(error: Error): void }
}
interface SentCommands {
  peekFront(): SentCommand | undefined
  toArray(): SentCommand[]
}

/**
 * Delay before reconnect attempt `attempt` (1-based): exponential from `baseMs`, capped at
 * `maxMs`, with "equal jitter" (half fixed, half random) so replicas that lost Redis together do
 * not all knock at the same instant, while the delay never drops below half the step.
 */
export function reconnectDelayMs(
  attempt: number,
  { baseMs = 50, maxMs = 2000, random = Math.random } = {},
): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(step / 2 + (random() * step) / 2)
}

function waitUntilReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const onError = (error: Error) => {
      lastError = error
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(lastError ?? new Error('no answer'))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      client.off('error', onError)
      client.off('ready', onReady)
    }
    client.on('error', onError)
    client.once('ready', onReady)
  })
}

async function quitThenDisconnect(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'end') return
  const ended = new Promise<void>((resolve) => client.once('end', resolve))
  // QUIT lets the server finish what it already received; if it does not answer, we go anyway.
  if (client.status === 'ready') await withinMs(client.quit().then(noop, noop), timeoutMs)
  client.disconnect()
  await withinMs(ended, timeoutMs)
}

async function withinMs(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  await Promise.race([promise, timeout])
  clearTimeout(timer)
}

function noop(): void {}

/** host:port/db without credentials, for logs and errors. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || 6379}${parsed.pathname.length > 1 ? parsed.pathname : ''}`
  } catch {
    return '(unparsable REDIS_URL)'
  }
}
