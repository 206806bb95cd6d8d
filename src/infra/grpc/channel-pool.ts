import {
  Channel,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientOptions,
  connectivityState,
  credentials,
  status,
} from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { AppError } from '../../shared/errors.ts'
import { outgoingMetadata } from './call-metadata.ts'
import { GrpcCallError } from './grpc-errors.ts'
import { type HealthCheckResponse, protoServices, type ServingStatus } from './proto-definitions.ts'
import { callUnary } from './unary-call.ts'

export type ClientConstructor<C extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: ClientOptions,
) => C

/** A health check's answer, or UNREACHABLE when none came. */
export type ChannelHealth = ServingStatus | 'UNREACHABLE'

export interface ChannelStatus {
  address: string
  /** The channel's connectivity: IDLE, CONNECTING, READY, TRANSIENT_FAILURE or SHUTDOWN. */
  state: string
  /** The last health check's answer; undefined before the first. */
  health: ChannelHealth | undefined
  /** Health checks failed in a row. */
  failures: number
  /** How often the channel was replaced after failing checks. */
  replaced: number
}

export interface GrpcChannelPoolOptions {
  /** Service name → address (host:port). */
  targets: Readonly<Record<string, string>>
  /** Sent as x-app-id on every call. */
  appId: string
  /** Ping an idle connection this often (HTTP/2 PING); default 30 000 ms. */
  keepaliveTimeMs?: number
  /** Drop a connection whose ping is not answered within this; default 10 000 ms. */
  keepaliveTimeoutMs?: number
  /** How often each opened channel is health-checked; 0: never. Default 15 000 ms. */
  healthCheckIntervalMs?: number
  /** Deadline of one health check; default 2000 ms. */
  healthCheckDeadlineMs?: number
  /** Failed checks in a row after which a channel is replaced by a new one; default 3. */
  maxHealthFailures?: number
  /** More grpc-js channel options over the defaults. */
  channelOptions?: ChannelOptions
  logger?: Logger
}

export interface GrpcChannelPool {
  readonly appId: string
  /** Whether a target of that name is configured. */
  has(name: string): boolean
  /**
   * A client of the named service on its pooled channel, made once per (name, client type).
   * Ask for it per call rather than keeping it: a channel replaced after failed health checks
   * comes with new clients.
   */
  client<C extends Client>(name: string, Client: ClientConstructor<C>): C
  /** Calls grpc.health.v1.Health/Check on the named target (service "" = the whole server). */
  checkHealth(
    name: string,
    options?: { service?: string; deadlineMs?: number },
  ): Promise<ChannelHealth>
  /** Each opened channel's state and last health. */
  status(): Record<string, ChannelStatus>
  /** Stops the health checks and closes every channel. */
  close(): Promise<void>
}

interface Entry {
  address: string
  channel: Channel
  clients: Map<ClientConstructor<Client>, Client>
  health: ChannelHealth | undefined
  failures: number
  replaced: number
}

/**
 * gRPC channels pooled by service name: one HTTP/2 channel per target (gRPC multiplexes every
 * call over it), opened on first use, with keepalive pings, grpc-js's own reconnection with
 * exponential backoff, and periodic health checks that replace a channel failing
 * `maxHealthFailures` times in a row (a fresh name resolution and connection).
 */
export function createGrpcChannelPool(options: GrpcChannelPoolOptions): GrpcChannelPool {
  const entries = new Map<string, Entry>()
  const channelOptions: ChannelOptions = {
    'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 30_000,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 10_000,
    ...options.channelOptions,
  }
  const insecure = credentials.createInsecure()
  const healthDeadlineMs = options.healthCheckDeadlineMs ?? 2000
  const maxFailures = options.maxHealthFailures ?? 3
  let isClosed = false

  const open = (name: string): Entry => {
    if (isClosed) throw new Error('the gRPC channel pool is closed')
    const existing = entries.get(name)
    if (existing) return existing
    const address = options.targets[name]
    if (address === undefined) {
      throw new AppError(
        'unavailable',
        'GRPC_TARGET_UNKNOWN',
        `No gRPC target named "${name}" is configured`,
      )
    }
    const entry: Entry = {
      address,
      channel: new Channel(address, insecure, channelOptions),
      clients: new Map(),
      health: undefined,
      failures: 0,
      replaced: 0,
    }
    entries.set(name, entry)
    return entry
  }

  const replace = (name: string, entry: Entry) => {
    entry.channel.close()
    entry.clients.clear()
    entry.channel = new Channel(entry.address, insecure, channelOptions)
    entry.failures = 0
    entry.replaced++
    options.logger?.warn(
      { grpc_target: name, address: entry.address },
      'gRPC channel failed its health checks: replaced',
    )
  }

  const client = <C extends Client>(name: string, Client: ClientConstructor<C>): C => {
    const entry = open(name)
    let made = entry.clients.get(Client)
    if (!made) {
      made = new Client(entry.address, insecure, { channelOverride: entry.channel })
      entry.clients.set(Client, made)
    }
    return made as C
  }

  const checkHealth: GrpcChannelPool['checkHealth'] = async (name, checkOptions = {}) => {
    const entry = open(name)
    let health: ChannelHealth
    try {
      const answer = await callUnary<HealthCheckResponse>(
        client(name, protoServices().Health),
        'Check',
        { service: checkOptions.service ?? '' },
        outgoingMetadata({ appId: options.appId }),
        { deadlineMs: checkOptions.deadlineMs ?? healthDeadlineMs },
      )
      health = answer.status
    } catch (error) {
      if (!(error instanceof GrpcCallError)) throw error
      health = error.code === status.NOT_FOUND ? 'SERVICE_UNKNOWN' : 'UNREACHABLE'
    }
    entry.health = health
    if (health === 'UNREACHABLE') {
      entry.failures++
      if (entry.failures >= maxFailures && entries.get(name) === entry && !isClosed)
        replace(name, entry)
    } else {
      entry.failures = 0
    }
    return health
  }

  const intervalMs = options.healthCheckIntervalMs ?? 15_000
  let isChecking = false
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          if (isChecking || entries.size === 0) return
          isChecking = true
          void Promise.allSettled([...entries.keys()].map((name) => checkHealth(name))).finally(
            () => {
              isChecking = false
            },
          )
        }, intervalMs)
      : undefined
  timer?.unref()

  return {
    appId: options.appId,
    has: (name) => options.targets[name] !== undefined,
    client,
    checkHealth,
    status() {
      const report: Record<string, ChannelStatus> = {}
      for (const [name, entry] of entries) {
        report[name] = {
          address: entry.address,
          state: connectivityState[entry.channel.getConnectivityState(false)],
          health: entry.health,
          failures: entry.failures,
          replaced: entry.replaced,
        }
      }
      return report
    },
    async close() {
      isClosed = true
      clearInterval(timer)
      for (const entry of entries.values()) entry.channel.close()
      entries.clear()
    },
  }
}

/** "users=127.0.0.1:50051,billing=billing:50051" → { users: "127.0.0.1:50051", … } */
export function parseGrpcTargets(spec: string): Record<string, string> {
  const targets: Record<string, string> = {}
  for (const entry of spec.split(',').filter(Boolean)) {
    const at = entry.indexOf('=')
    targets[entry.slice(0, at).trim()] = entry.slice(at + 1).trim()
  }
  return targets
}
