import {
  type ChannelOptions,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'

export interface GrpcServiceBinding {
  definition: ServiceDefinition
  implementation: UntypedServiceImplementation
}

export interface GrpcServerOptions {
  host: string
  /** 0 picks a free port; `port` on the handle says which. */
  port: number
  services: readonly GrpcServiceBinding[]
  /** How long close() lets calls in flight finish before cancelling them. */
  shutdownTimeoutMs: number
  /** Passed to grpc-js over the defaults below (keepalive, message size). */
  channelOptions?: ChannelOptions
  /** Runs first in close(), e.g. to end health Watch streams that would hold the shutdown. */
  beforeClose?: () => void
}

export interface GrpcServerHandle {
  /** The port bound (the real one when 0 was asked). */
  readonly port: number
  /** Stops accepting, lets calls in flight finish within the timeout, then cancels the rest. */
  close(): Promise<void>
}

/**
 * Keepalive: ping an idle client every minute and drop it after 20 s without an answer, so dead
 * peers (a vanished pod, a NAT that forgot us) do not hold HTTP/2 sessions forever. Clients may
 * ping every 10 s (the channel pool pings every 30 s).
 */
const DEFAULT_OPTIONS: ChannelOptions = {
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
}

/** Starts a gRPC server (insecure: TLS ends at the ingress or mesh) with the given services. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const server = new Server({ ...DEFAULT_OPTIONS, ...options.channelOptions })
  for (const service of options.services)
    server.addService(service.definition, service.implementation)
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host}:${options.port}`,
      ServerCredentials.createInsecure(),
      (error, bound) =>
        error
          ? reject(
              new Error(`gRPC cannot listen on ${host}:${options.port}: ${error.message}`, {
                cause: error,
              }),
            )
          : resolve(bound),
    )
  })
  let closing: Promise<void> | undefined
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        options.beforeClose?.()
        const timer = setTimeout(() => {
          server.forceShutdown()
          resolve()
        }, options.shutdownTimeoutMs)
        server.tryShutdown(() => {
          clearTimeout(timer)
          resolve()
        })
      })
      return closing
    },
  }
}
