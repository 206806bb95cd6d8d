import type { Config } from '../config/index.ts'
import { type Cache, createMemoryCache, createRedisCache } from '../infra/cache/index.ts'
import { createDatabase, type DatabaseHandle, migrateToLatest } from '../infra/db/index.ts'
import {
  createMemoryLockManager,
  createRedisLockManager,
  type LockManager,
  leaseWorkerId,
} from '../infra/lock/index.ts'
import { createLoggers, type Loggers } from '../infra/logger/index.ts'
import {
  createMetrics,
  instrumentCache,
  type Metrics,
  registerDatabaseMetrics,
} from '../infra/metrics/index.ts'
import { createPubSub, type PubSub } from '../infra/pubsub/index.ts'
import { createTaskBroker, type TaskQueue } from '../infra/queue/index.ts'
import { createRedis, type RedisConnection } from '../infra/redis/index.ts'
import { createTracing, type SpanExporter } from '../infra/tracing/index.ts'
import {
  type BackgroundWork,
  createBackgroundWork,
  scheduleTable,
  standaloneTasks,
} from '../jobs/index.ts'
import { type AuthService, createAuthService } from '../modules/auth/auth-service.ts'
import { createTokenStore } from '../modules/auth/token-store.ts'
import {
  createItemsExport,
  type ItemsExport,
  itemsExportSource,
} from '../modules/items/items-export.ts'
import { createItemsRepository } from '../modules/items/items-repository.ts'
import { createItemsService, type ItemsService } from '../modules/items/items-service.ts'
import {
  createOrderDispatcher,
  createOrdersRepository,
  createOrdersService,
  createOrderTasks,
  type OrdersService,
} from '../modules/orders/index.ts'
import { createTasksService, type TasksService } from '../modules/tasks/index.ts'
import { createUsersRepository } from '../modules/users/users-repository.ts'
import { createUsersService, type UsersService } from '../modules/users/users-service.ts'
import {
  createSnowflake,
  isWorkerIdPinned,
  type Snowflake,
  workerIdFrom,
} from '../shared/ids/index.ts'
import { createPasswordHasher } from '../shared/password.ts'
import { createTokenService } from '../shared/tokens.ts'
import { type Integrations, openIntegrations } from './integrations.ts'
import { Readiness } from './readiness.ts'

/** Something the container opened and must close at shutdown. */
interface Owned {
  name: string
  close(): Promise<void>
}

/** The business services the HTTP routes, jobs and other entry points call. */
export interface Services {
  auth: AuthService
  users: UsersService
  items: ItemsService
  itemsExport: ItemsExport
  orders: OrdersService
  tasks: TasksService
}

/** Everything a command needs, opened in order; `close()` closes it in reverse. */
export interface Container {
  config: Readonly<Config>
  logger: Loggers
  readiness: Readiness
  /** Prometheus metrics: every module registers its counters, gauges and histograms here. */
  metrics: Metrics
  /** Where finished spans go (OTLP) when OTEL_EXPORTER_OTLP_ENDPOINT is set; else undefined. */
  tracing: SpanExporter | undefined
  /** The database DATABASE_URL names: `db.db` is the typed query builder repositories take. */
  db: DatabaseHandle
  /** Snowflake ids for new rows; the worker id comes from WORKER_ID or POD_NAME. */
  ids: Snowflake
  /** The Redis connection in distributed mode (REDIS_URL set); undefined in embedded mode. */
  redis: RedisConnection | undefined
  /** Redis in distributed mode, a bounded in-process map in embedded mode; keys under APP_NAME. */
  cache: Cache
  locks: LockManager
  /** Realtime fan-out: Redis pub/sub in distributed mode, in process in embedded mode. */
  pubsub: PubSub
  /** Tasks to run in the background: BullMQ with REDIS_URL, in process without. */
  tasks: TaskQueue
  /** Workers, the scheduler and the order outbox sweep, on the same broker (for commands). */
  background: BackgroundWork
  services: Services
  /** Outgoing HTTP and gRPC clients, /internal signatures, the CPU pool, the gRPC server. */
  integrations: Integrations
  close(): Promise<void>
}

export interface ContainerOverrides {
  logger?: Loggers
  /** Embedded (SQLite) mode migrates to the latest schema at start-up unless this is false; the
   * migrate command turns it off to manage the schema itself. */
  isMigratingAtStart?: boolean
  /**
   * Run a task worker (with the outbox sweep) and the scheduler inside this process, closed
   * with the container. Default: in embedded mode (no REDIS_URL), where no separate worker
   * process exists, unless isMigratingAtStart is false; the worker and scheduler commands
   * start their own, and migrate and seed need none.
   */
  runsEmbeddedWorkers?: boolean
  /**
   * Start the gRPC server (GRPC_PORT) in this process. Default: only in the serving process,
   * i.e. not when migrate (isMigratingAtStart: false) or worker, scheduler and seed
   * (runsEmbeddedWorkers: false) build the container.
   */
  servesGrpc?: boolean
}

/**
 * The one composition root, shared by every command: infrastructure, then repositories, then
 * services. If opening anything fails, what was already opened is closed before the error goes on.
 */
export async function createContainer(
  config: Readonly<Config>,
  overrides: ContainerOverrides = {},
): Promise<Container> {
  const owned: Owned[] = []
  const logger = overrides.logger ?? createLoggers(config)
  const readiness = new Readiness()
  const metrics = createMetrics({ isClusterWorker: config.CLUSTER_WORKER_SLOT !== undefined })
  owned.push({ name: 'metrics', close: async () => metrics.close() })
  const tracing = createTracing(config, logger.system)
  if (tracing) owned.push({ name: 'tracing', close: () => tracing.close() })

  const close = async () => {
    for (const resource of owned.reverse()) {
      try {
        await resource.close()
      } catch (error) {
        logger.system.error({ err: error, resource: resource.name }, 'closing failed')
      }
    }
    owned.length = 0
    await logger.close()
  }

  try {
    const db = await openDatabase(config, logger, overrides)
    owned.push({ name: 'database', close: () => db.close() })
    readiness.add({ name: 'database', check: () => db.ping() })
    registerDatabaseMetrics(metrics, db)

    let redis: RedisConnection | undefined
    let cache: Cache
    let sessions: Cache
    let locks: LockManager
    if (config.REDIS_URL) {
      const connection = await createRedis(config.REDIS_URL, logger.system, {
        connectionName: config.APP_NAME,
      })
      redis = connection
      owned.push({ name: 'redis', close: () => connection.close() })
      cache = createRedisCache({ redis: connection.client, prefix: config.APP_NAME })
      sessions = cache
      locks = createRedisLockManager({
        redis: connection.client,
        prefix: config.APP_NAME,
        logger: logger.system,
      })
    } else {
      const memory = createMemoryCache({
        prefix: config.APP_NAME,
        maxEntries: config.CACHE_MAX_ENTRIES,
      })
      // Sessions get a map of their own: a busy item cache must not evict them (log people out).
      const sessionMemory = createMemoryCache({
        prefix: config.APP_NAME,
        maxEntries: config.CACHE_MAX_ENTRIES,
      })
      cache = memory
      sessions = sessionMemory
      locks = createMemoryLockManager({ logger: logger.system })
      owned.push({ name: 'cache', close: () => memory.close() })
      owned.push({ name: 'sessions', close: () => sessionMemory.close() })
    }
    readiness.add({ name: 'cache', check: () => cache.ping() })

    const pubsub = await createPubSub({
      redisUrl: config.REDIS_URL,
      publisher: redis?.client,
      prefix: config.APP_NAME,
      logger: logger.system,
      historyLimit: config.PUBSUB_HISTORY_LIMIT,
    })
    owned.push({ name: 'pubsub', close: () => pubsub.close() })
    // In process it cannot fail; on Redis its subscriber connection is one of its own.
    if (config.REDIS_URL) readiness.add({ name: 'pubsub', check: () => pubsub.ping() })

    let workerId = workerIdFrom(config)
    if (redis && !isWorkerIdPinned(config)) {
      // Replicas without a pinned id (Deployment pods) lease a free one, so ids never collide.
      const lease = await leaseWorkerId(locks, {
        onLost: (id) => logger.system.error({ workerId: id }, 'snowflake worker id lease lost'),
      })
      owned.push({ name: 'worker id lease', close: () => lease.release() })
      workerId = lease.workerId
    }
    const ids = createSnowflake({
      workerId,
      onClockBackwards: ({ driftMs }) =>
        logger.system.warn({ driftMs }, 'clock stepped back: ids go on from a logical clock'),
    })

    const broker = await createTaskBroker({
      redisUrl: config.REDIS_URL,
      prefix: config.APP_NAME,
      resultTtlMs: config.TASK_RESULT_TTL_SECONDS * 1000,
      lockDurationMs: config.TASK_LOCK_DURATION_MS,
      stalledIntervalMs: config.TASK_STALLED_INTERVAL_MS,
      logger: logger.system,
    })
    owned.push({ name: 'task broker', close: () => broker.close() })
    metrics.gauge({
      name: 'task_queue_depth',
      help: 'Tasks waiting to run: queued, delayed or waiting for their children.',
      // A scrape while Redis is away reports NaN (unknown) instead of failing as a whole.
      async collect() {
        this.set(await broker.depth().catch(() => Number.NaN))
      },
    })
    const scheduler = broker.createScheduler(scheduleTable(config))

    const users = createUsersRepository({ db: db.db, ids })
    const items = createItemsRepository({ db: db.db, ids })
    const orders = createOrdersRepository({ db: db.db, ids })

    const auth = createAuthService({
      users,
      passwords: createPasswordHasher({ cost: config.BCRYPT_COST }),
      tokens: createTokenService(config),
      tokenStore: createTokenStore({ cache: sessions }),
    })
    const services: Services = {
      auth,
      users: createUsersService({ users }),
      items: createItemsService({
        items,
        cache: instrumentCache(cache, metrics, 'items'),
        cacheTtlSeconds: config.CACHE_TTL_SECONDS,
        onCacheError: throttled(10_000, (error) =>
          logger.system.warn({ err: error }, 'cache unavailable: reading from the database'),
        ),
      }),
      itemsExport: createItemsExport({ source: itemsExportSource(items) }),
      orders: createOrdersService({
        orders,
        tasks: broker,
        events: pubsub,
        forgetItem: (itemId) => services.items.forget(itemId),
        logger: logger.system,
      }),
      tasks: createTasksService({ tasks: broker, schedules: scheduler }),
    }
    const background = createBackgroundWork({
      broker,
      scheduler,
      tasks: [
        ...standaloneTasks,
        ...createOrderTasks(
          services.orders,
          metrics.counter({
            name: 'orders_settled_total',
            help: 'Orders settled by the order job, by outcome (completed or rejected).',
            labelNames: ['status'],
          }),
        ),
      ],
      sweepers: [
        createOrderDispatcher({
          orders,
          tasks: broker,
          sweepSeconds: config.OUTBOX_SWEEP_SECONDS,
          isQueueDurable: broker.kind === 'bullmq',
          logger: logger.system,
        }),
      ],
      concurrency: config.WORKER_CONCURRENCY,
      graceMs: config.SHUTDOWN_GRACE_MS,
      logger: logger.system,
      metrics,
    })
    const isEmbedded = config.REDIS_URL === undefined && overrides.isMigratingAtStart !== false
    if (overrides.runsEmbeddedWorkers ?? isEmbedded) {
      const worker = await background.startWorker()
      owned.push({ name: 'embedded worker', close: () => worker.close() })
      // Under `serve --workers N` one process fires the schedules, not N.
      if ((config.CLUSTER_WORKER_SLOT ?? 1) === 1) {
        await scheduler.start()
        owned.push({ name: 'scheduler', close: () => scheduler.close() })
      }
    }

    // Last: the gRPC server serves the services above, so it opens after and closes before them.
    const integrations = await openIntegrations({
      config,
      logger,
      cache,
      readiness,
      authenticate: (token) => auth.authenticate(token),
      users,
      usersService: services.users,
      own: (name, closeIt) => owned.push({ name, close: closeIt }),
      servesGrpc:
        overrides.servesGrpc ??
        (overrides.isMigratingAtStart !== false && overrides.runsEmbeddedWorkers !== false),
    })

    return {
      config,
      logger,
      readiness,
      metrics,
      tracing,
      db,
      ids,
      redis,
      cache,
      locks,
      pubsub,
      tasks: broker,
      background,
      services,
      integrations,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

async function openDatabase(
  config: Readonly<Config>,
  logger: Loggers,
  overrides: ContainerOverrides,
): Promise<DatabaseHandle> {
  const database = createDatabase(config, logger.system)
  try {
    await database.ping()
  } catch (error) {
    await database.close().catch(() => undefined)
    const { message, code } = error as { message?: string; code?: string }
    throw new Error(`cannot reach the ${database.dialect} database: ${message || code}`, {
      cause: error,
    })
  }
  if (database.dialect === 'sqlite' && overrides.isMigratingAtStart !== false) {
    const applied = await migrateToLatest(database)
    if (applied.length > 0) logger.system.info({ applied }, 'database migrated')
  }
  return database
}

/** Calls `fn` at most once per `intervalMs`: an outage should not flood the logs. */
function throttled<T>(intervalMs: number, fn: (value: T) => void): (value: T) => void {
  let last = 0
  return (value) => {
    const now = Date.now()
    if (now - last < intervalMs) return
    last = now
    fn(value)
  }
}
