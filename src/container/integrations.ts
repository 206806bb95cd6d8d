import type { Config } from '../config/index.ts'
import type { Cache } from '../infra/cache/index.ts'
import { type CpuPool, createCpuPool } from '../infra/cpu-pool/index.ts'
import {
  createGrpcChannelPool,
  createUserClient,
  type GrpcChannelPool,
  type GrpcServerHandle,
  parseGrpcTargets,
  type UserClient,
} from '../infra/grpc/index.ts'
import { createHttpClient, type HttpClient } from '../infra/http-client/index.ts'
import type { Loggers } from '../infra/logger/index.ts'
import {
  type AggregateService,
  type ComputeService,
  createAggregateService,
  createComputeService,
  createUsersDirectory,
  type GatewayRoute,
  parseGatewayRoutes,
  parseNamedUpstreams,
  startGrpcEndpoint,
} from '../modules/integrations/index.ts'
import { createCacheNonceStore, parseSigningKeys } from '../modules/internal/index.ts'
import type { UsersRepository } from '../modules/users/users-repository.ts'
import type { UsersService } from '../modules/users/users-service.ts'
import { createSignatureVerifier, type SignatureVerifier } from '../shared/hmac-signing.ts'
import type { Readiness } from './readiness.ts'

/** Outgoing calls, the gateway, /internal signatures, the CPU pool and gRPC, as the container opens them. */
export interface Integrations {
  /** Outgoing HTTP (undici): pooled keep-alive sockets, timeouts, retries for idempotent calls. */
  http: HttpClient
  /** As `http`, signing every call with the first INTERNAL_HMAC_KEYS key; undefined without keys. */
  signedHttp: HttpClient | undefined
  /** Checks the signature of /internal requests; nonces live in the shared cache. */
  signatures: SignatureVerifier
  /** Worker threads for CPU-bound work; threads start on first use. */
  cpu: CpuPool
  /** gRPC client channels by service name (GRPC_TARGETS). */
  grpc: GrpcChannelPool
  /**
   * A UserService client on the "users" target of GRPC_TARGETS, deadline GRPC_DEADLINE_MS; pass
   * the caller's token per call. Fails with GRPC_TARGET_UNKNOWN (503) when no such target is set.
   */
  userClient: UserClient
  /** servekit's own gRPC server (UserService, health) when GRPC_PORT is on in this process. */
  grpcServer: GrpcServerHandle | undefined
  gatewayRoutes: GatewayRoute[]
  aggregate: AggregateService
  compute: ComputeService
}

export interface IntegrationsDeps {
  config: Readonly<Config>
  logger: Loggers
  cache: Cache
  readiness: Readiness
  /** The bearer check gRPC calls pass (the auth service's). */
  authenticate: (token: string) => Promise<unknown>
  /** What the gRPC UserService reads. */
  users: Pick<UsersRepository, 'list'>
  usersService: Pick<UsersService, 'getById'>
  /** Registers something to close at shutdown (in reverse order of registration). */
  own: (name: string, close: () => Promise<void>) => void
  /** Start the gRPC server here (GRPC_PORT permitting); only the serving process does. */
  servesGrpc: boolean
}

/** Opens the integration infrastructure in order; each piece is owned as soon as it exists. */
export async function openIntegrations(deps: IntegrationsDeps): Promise<Integrations> {
  const { config, logger, own } = deps
  const clientOptions = {
    timeoutMs: config.HTTP_CLIENT_TIMEOUT_MS,
    retries: config.HTTP_CLIENT_RETRIES,
    connections: 64,
    keepAliveTimeoutMs: 10_000,
    headers: { 'user-agent': `${config.APP_NAME} (servekit)` },
  }
  const http = createHttpClient(clientOptions)
  own('http client', () => http.close())

  const keys = parseSigningKeys(config.INTERNAL_HMAC_KEYS)
  const signingKey = keys[0]
  const signedHttp = signingKey
    ? createHttpClient({ ...clientOptions, sign: signingKey })
    : undefined
  if (signedHttp) own('signed http client', () => signedHttp.close())
  const secrets = new Map(keys.map((key) => [key.keyId, key.secret]))
  const signatures = createSignatureVerifier({
    secretFor: (keyId) => secrets.get(keyId),
    nonceStore: createCacheNonceStore(deps.cache),
    maxSkewSeconds: config.INTERNAL_HMAC_MAX_SKEW_SECONDS,
  })

  const cpu = createCpuPool({ maxThreads: config.CPU_POOL_THREADS })
  own('cpu pool', () => cpu.close())

  const grpc = createGrpcChannelPool({
    targets: parseGrpcTargets(config.GRPC_TARGETS),
    appId: config.APP_NAME,
    logger: logger.system,
  })
  own('grpc channels', () => grpc.close())

  const grpcPort = deps.servesGrpc ? grpcPortOf(config) : undefined
  let grpcServer: GrpcServerHandle | undefined
  if (grpcPort !== undefined) {
    const server = await startGrpcEndpoint({
      host: config.HOST,
      port: grpcPort,
      directory: createUsersDirectory({ users: deps.users, service: deps.usersService }),
      authenticate: deps.authenticate,
      allowedAppIds: new Set(config.GRPC_ALLOWED_APP_IDS.split(',').filter(Boolean)),
      isDraining: () => deps.readiness.isDraining,
      shutdownTimeoutMs: Math.min(config.SHUTDOWN_GRACE_MS, 10_000),
      logger: logger.access,
    })
    own('grpc server', () => server.close())
    grpcServer = server
    logger.system.info({ port: server.port }, `gRPC listening on ${config.HOST}:${server.port}`)
  }

  return {
    http,
    signedHttp,
    signatures,
    cpu,
    grpc,
    userClient: createUserClient(grpc, { target: 'users', deadlineMs: config.GRPC_DEADLINE_MS }),
    grpcServer,
    gatewayRoutes: parseGatewayRoutes(config.GATEWAY_ROUTES),
    aggregate: createAggregateService({
      http,
      upstreams: parseNamedUpstreams(config.AGGREGATE_UPSTREAMS),
    }),
    compute: createComputeService({ cpu }),
  }
}

/** GRPC_PORT: "off" → none; unset → 50051 in prod, none elsewhere; else the number (0: any). */
export function grpcPortOf(config: Pick<Config, 'GRPC_PORT' | 'APP_ENV'>): number | undefined {
  const setting = config.GRPC_PORT ?? (config.APP_ENV === 'prod' ? '50051' : 'off')
  return setting === 'off' ? undefined : Number(setting)
}
