import Type from 'typebox'

/**
 * Every setting servekit reads, with its default and a one-line meaning. Keys marked `secret`
 * never have their value echoed in an error.
 * `.env.example` is checked against this list by a test, so the two cannot drift.
 */
const Integer = (options: {
  minimum: number
  maximum: number
  default?: number
  description: string
}) => Type.Integer(options)

const OptionalString = (description: string, pattern?: string, secret = false) =>
  Type.Optional(Type.String({ description, minLength: 1, secret, ...(pattern ? { pattern } : {}) }))

const GATEWAY_ROUTE = '/[A-Za-z0-9._~-][A-Za-z0-9._~/-]*=https?://[^,\\s]+'
const NAMED_UPSTREAM = '[a-z][a-z0-9_-]{0,39}=https?://[^,\\s]+'
const GRPC_TARGET = '[a-z][a-z0-9_-]{0,39}=[^,=\\s]+:[0-9]{1,5}'
const HMAC_KEY = '[\\w.-]{1,128}:[^,\\s]{32,}'

export const ConfigSchema = Type.Object({
  APP_NAME: Type.String({
    default: 'servekit',
    pattern: '^[a-z][a-z0-9_-]{0,39}$',
    description: 'service name; prefixes every Redis key and names the logs',
    expected: 'lowercase letters, digits, "-" or "_", starting with a letter, at most 40',
  }),
  APP_ENV: Type.Union(
    [Type.Literal('local'), Type.Literal('dev'), Type.Literal('test'), Type.Literal('prod')],
    {
      default: 'local',
      description: 'environment; also selects configs/.env.<APP_ENV>',
    },
  ),
  APP_DEBUG: Type.Boolean({
    default: false,
    description: 'adds debug detail to logs (never to responses)',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) =>
      Type.Literal(level),
    ),
    { default: 'info', description: 'lowest level written' },
  ),
  LOG_FORMAT: Type.Optional(
    Type.Union([Type.Literal('pretty'), Type.Literal('json')], {
      description: 'console format; default pretty in local, json elsewhere',
    }),
  ),
  LOG_DIR: OptionalString(
    'when set, also write system/access/business logs to files in this folder',
  ),
  LOG_ROTATE: Type.String({
    default: '1d',
    pattern: '^[1-9][0-9]*(d|h|M|G)$',
    description: 'log file rotation: by time (1d, 12h) or by size (100M, 1G)',
    expected: 'a number followed by d, h (time) or M, G (size), e.g. 1d or 100M',
  }),
  LOG_RETENTION_FILES: Integer({
    minimum: 1,
    maximum: 1000,
    default: 14,
    description: 'rotated log files kept per logger',
  }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address to listen on' }),
  PORT: Integer({
    minimum: 0,
    maximum: 65535,
    default: 8000,
    description: 'HTTP port (0 picks a free one)',
  }),
  DATABASE_URL: Type.String({
    default: 'sqlite:./data/servekit.db',
    pattern: '^(sqlite:|mysql://|mariadb://|postgres://|postgresql://)',
    description:
      'sqlite:<path> (embedded), mysql://user:pass@host:3306/db or postgres://user:pass@host:5432/db',
    secret: true,
    expected: 'sqlite:<path>, mysql://… or postgres://…',
  }),
  DB_POOL_SIZE: Integer({
    minimum: 1,
    maximum: 500,
    default: 10,
    description: 'connections per process (MySQL, PostgreSQL)',
  }),
  DB_CONNECT_TIMEOUT_MS: Integer({
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    description: 'connect timeout',
  }),
  DB_QUERY_TIMEOUT_MS: Integer({
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description: 'statement timeout',
  }),
  DB_SLOW_QUERY_MS: Integer({
    minimum: 0,
    maximum: 600_000,
    default: 200,
    description: 'log statements slower than this',
  }),
  REDIS_URL: OptionalString(
    'unset: cache, jobs and pub/sub in process; redis://host:6379/0: Redis and BullMQ',
    '^rediss?://',
    true,
  ),
  WORKER_ID: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 1023,
      description:
        'snowflake worker id, unique per process; default: the ordinal of POD_NAME, else 0',
    }),
  ),
  POD_NAME: OptionalString(
    'the pod name (Kubernetes downward API); a StatefulSet ordinal suffix gives WORKER_ID',
  ),
  CACHE_MAX_ENTRIES: Integer({
    minimum: 100,
    maximum: 10_000_000,
    default: 100_000,
    description: 'in-memory cache bound (embedded mode); least recently used entries go first',
  }),
  PUBSUB_HISTORY_LIMIT: Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 1000,
    description:
      'messages kept per pub/sub channel for replay (SSE Last-Event-ID, chat last_event_id): a room must keep what it publishes while a client reconnects',
  }),
  CACHE_TTL_SECONDS: Integer({
    minimum: 1,
    maximum: 86_400 * 30,
    default: 300,
    description: 'default time an item stays in the cache',
  }),
  BCRYPT_COST: Integer({
    minimum: 4,
    maximum: 15,
    default: 12,
    description: 'bcrypt work factor for new password hashes',
  }),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('RS256'), Type.Literal('ES256')], {
    default: 'HS256',
    description: 'token signing algorithm; RS256 and ES256 need the key files below',
  }),
  JWT_PRIVATE_KEY_FILE: OptionalString('PEM private key for RS256/ES256 signing'),
  JWT_PUBLIC_KEY_FILE: OptionalString('PEM public key for RS256/ES256 verification'),
  JWT_EXPIRES_SECONDS: Integer({
    minimum: 60,
    maximum: 86_400 * 30,
    default: 3600,
    description: 'access token lifetime',
  }),
  JWT_ISSUER: Type.String({
    default: 'servekit',
    minLength: 1,
    description: 'iss claim set and required on tokens',
  }),
  JWT_AUDIENCE: Type.String({
    default: 'servekit-api',
    minLength: 1,
    description: 'aud claim set and required on tokens',
  }),
  JWT_SECRET: Type.String({
    default: 'change-me-change-me-change-me-change-me',
    minLength: 32,
    secret: true,
    description:
      'HS256 signing secret, at least 32 bytes (refused in prod when left as the example)',
    expected: 'a random string of at least 32 characters',
  }),
  RATE_LIMIT_PER_MINUTE: Integer({
    minimum: 1,
    maximum: 100_000_000,
    default: 1200,
    description: 'requests per minute per client address, across replicas',
  }),
  RATE_LIMIT_USER_PER_MINUTE: Integer({
    minimum: 1,
    maximum: 100_000_000,
    default: 600,
    description: 'authenticated requests per minute per user, across replicas',
  }),
  RATE_LIMIT_ROUTES: Type.String({
    default: 'POST /api/auth/login=10,POST /api/auth/register=20',
    pattern: '^$|^[A-Z]+ /[^=, ]*=[0-9]+(,[A-Z]+ /[^=, ]*=[0-9]+)*$',
    description: 'stricter per-address limits per route and minute: "METHOD /path=max,…"',
    expected: 'comma-separated "METHOD /path=max" entries, e.g. POST /api/auth/login=10',
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    pattern: '^(true|false|[0-9]{1,2}|[0-9a-fA-F.:/]+(,[0-9a-fA-F.:/]+)*)$',
    description:
      'which proxies to trust for X-Forwarded-For: false, true, a hop count, or addresses/CIDRs',
    expected: 'false, true, a hop count such as 1, or comma-separated addresses or CIDRs',
  }),
  WEB_WORKERS: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 256,
      description:
        'HTTP worker processes of serve (--workers), over 1 only with REDIS_URL: 0 = one per CPU core; unset: one per core in prod with REDIS_URL, else 1',
    }),
  ),
  CLUSTER_WORKER_SLOT: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 256,
      description: 'set by serve --workers N on each worker process (1..N); never set it by hand',
    }),
  ),
  CORS_ORIGINS: Type.String({
    default: '',
    pattern: '^$|^\\*$|^https?://[^,\\s/]+(,https?://[^,\\s/]+)*$',
    description:
      'origins allowed to call the API from a browser, comma-separated (https://app.example.com); empty: none; * any (never with credentials)',
    expected: 'empty, *, or comma-separated origins such as https://app.example.com',
  }),
  CORS_ALLOW_CREDENTIALS: Type.Boolean({
    default: false,
    description: 'let browsers send cookies and Authorization to the CORS_ORIGINS (refused with *)',
  }),
  TLS_CERT_FILE: OptionalString(
    'PEM certificate (chain): with TLS_KEY_FILE, serve HTTPS and HTTP/2',
  ),
  TLS_KEY_FILE: OptionalString('PEM private key of TLS_CERT_FILE'),
  BODY_LIMIT_BYTES: Integer({
    minimum: 1024,
    maximum: 1_073_741_824,
    default: 1_048_576,
    description: 'largest request body accepted; larger ones get 413',
  }),
  MAX_HEADER_BYTES: Integer({
    minimum: 1024,
    maximum: 1_048_576,
    default: 16_384,
    description: 'largest request head (request line and headers); larger ones get 431',
  }),
  HTTP_HEADERS_TIMEOUT_MS: Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 10_000,
    description: 'time a client gets to send the request headers (slow-loris guard)',
  }),
  HTTP_REQUEST_TIMEOUT_MS: Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 30_000,
    description: 'time a client gets to send the whole request, body included; then 408',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 72_000,
    description:
      'idle keep-alive connections close after this; keep it above the load balancer idle timeout',
  }),
  HTTP_CONNECTION_TIMEOUT_MS: Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 0,
    description: 'socket inactivity timeout; 0 = none (long-lived SSE and WebSocket connections)',
  }),
  HTTP_HANDLER_TIMEOUT_MS: Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 30_000,
    description: 'a route that has not started its answer by then gets 503; 0 = no limit',
  }),
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: Integer({
    minimum: 0,
    maximum: 60_000,
    // A request waits about one to two loop turns: 200 ms keeps the answered ones under 500 ms.
    default: 200,
    description: 'answer 503 + Retry-After while the mean event-loop delay is above this; 0 = off',
  }),
  LOAD_SHED_MAX_HEAP_BYTES: Integer({
    minimum: 0,
    maximum: 1_099_511_627_776,
    default: 0,
    description: 'answer 503 + Retry-After while the V8 heap in use is above this; 0 = off',
  }),
  LOAD_SHED_MAX_RSS_BYTES: Integer({
    minimum: 0,
    maximum: 1_099_511_627_776,
    default: 0,
    description: 'answer 503 + Retry-After while the resident memory is above this; 0 = off',
  }),
  LOAD_SHED_RETRY_AFTER_SECONDS: Integer({
    minimum: 1,
    maximum: 3600,
    default: 10,
    description: 'Retry-After sent with a load-shedding 503',
  }),
  METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 65535,
      description:
        'worker and scheduler: serve GET /metrics and /health on this port (unset: none)',
    }),
  ),
  METRICS_ENABLED: Type.Boolean({
    default: true,
    description: 'serve Prometheus metrics at GET /metrics (keep it off the public ingress)',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: OptionalString(
    'OpenTelemetry collector base URL (http://collector:4318): when set, request spans are exported as OTLP/HTTP JSON',
    '^https?://',
  ),
  TASK_RESULT_TTL_SECONDS: Integer({
    minimum: 1,
    maximum: 86_400 * 30,
    default: 86_400,
    description:
      'how long a finished task and its result or error stay visible (GET /api/tasks/{id})',
  }),
  WORKER_CONCURRENCY: Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'tasks one worker process (or embedded serve) runs at the same time',
  }),
  TASK_LOCK_DURATION_MS: Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description:
      'distributed mode: lock on a running task, renewed at half this; a dead worker loses its tasks after it',
  }),
  TASK_STALLED_INTERVAL_MS: Integer({
    minimum: 500,
    maximum: 600_000,
    default: 15_000,
    description: 'distributed mode: how often workers look for the tasks of dead workers',
  }),
  OUTBOX_SWEEP_SECONDS: Integer({
    minimum: 1,
    maximum: 3600,
    default: 10,
    description:
      'workers send outbox messages still unsent after this long (and re-enqueue orders pending 6x as long) every this often',
  }),
  SCHEDULE_TEST_INTERVAL_MS: Type.Optional(
    Type.Integer({
      minimum: 100,
      maximum: 86_400_000,
      description:
        'tests only (refused in prod): adds a test_tick schedule running tasks.number-sum every N ms',
    }),
  ),
  SHUTDOWN_GRACE_MS: Integer({
    minimum: 0,
    maximum: 300_000,
    default: 10_000,
    description: 'time in-flight work gets to finish on SIGTERM',
  }),
  SHUTDOWN_DELAY_MS: Integer({
    minimum: 0,
    maximum: 60_000,
    default: 0,
    description: 'pause with /ready at 503 before closing, so load balancers notice',
  }),
  // Integrations (issue 8): outgoing HTTP, gateway, aggregation, gRPC, /internal, CPU pool.
  HTTP_CLIENT_TIMEOUT_MS: Integer({
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description: 'outgoing HTTP calls: time per attempt before giving up',
  }),
  HTTP_CLIENT_RETRIES: Integer({
    minimum: 0,
    maximum: 10,
    default: 2,
    description: 'outgoing HTTP calls: extra attempts for idempotent methods (backoff with jitter)',
  }),
  GATEWAY_ROUTES: Type.String({
    default: '',
    pattern: `^$|^${GATEWAY_ROUTE}(,${GATEWAY_ROUTE})*$`,
    description:
      'API gateway: "/prefix=http://upstream[/base],…"; /prefix/x?q is proxied to http://upstream/base/x?q',
    expected:
      'comma-separated "/prefix=http://host:port[/base]" entries, e.g. /gw/echo=http://127.0.0.1:9000',
  }),
  GATEWAY_TIMEOUT_MS: Integer({
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description: 'gateway: time for the upstream to send its headers; then 504',
  }),
  GATEWAY_RATE_LIMIT_PER_MINUTE: Integer({
    minimum: 1,
    maximum: 100_000_000,
    default: 600,
    description: 'gateway: requests per minute per client address on each route',
  }),
  GATEWAY_CACHE_TTL_SECONDS: Integer({
    minimum: 0,
    maximum: 86_400,
    default: 5,
    description: 'gateway: how long a shareable GET 200 answer is served from the cache; 0 = never',
  }),
  AGGREGATE_UPSTREAMS: Type.String({
    default: '',
    pattern: `^$|^${NAMED_UPSTREAM}(,${NAMED_UPSTREAM})*$`,
    description: 'GET /api/aggregate: the JSON endpoints called at once, "name=http://host/path,…"',
    expected:
      'comma-separated "name=http://host:port/path" entries, e.g. stock=http://127.0.0.1:9001/stock',
  }),
  AGGREGATE_DEADLINE_MS: Integer({
    minimum: 1,
    maximum: 60_000,
    default: 1000,
    description: 'GET /api/aggregate: answer with what arrived by then (?deadline_ms= overrides)',
  }),
  GRPC_PORT: Type.Optional(
    Type.String({
      pattern:
        '^(off|0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$',
      description:
        'gRPC UserService and health port on HOST; 0 picks a free one; off disables; unset: 50051 in prod, off elsewhere',
      expected: 'off, or a port from 0 to 65535',
    }),
  ),
  GRPC_ALLOWED_APP_IDS: Type.String({
    default: '',
    pattern: '^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(,[A-Za-z0-9][A-Za-z0-9._-]{0,63})*$',
    description: 'gRPC server: x-app-id values allowed to call, comma-separated; empty: any',
    expected: 'empty, or comma-separated app ids such as billing,reports',
  }),
  GRPC_TARGETS: Type.String({
    default: '',
    pattern: `^$|^${GRPC_TARGET}(,${GRPC_TARGET})*$`,
    description:
      'gRPC clients: "name=host:port,…" for the channel pool (e.g. users=127.0.0.1:50051)',
    expected: 'comma-separated "name=host:port" entries, e.g. users=127.0.0.1:50051',
  }),
  GRPC_DEADLINE_MS: Integer({
    minimum: 1,
    maximum: 600_000,
    default: 5000,
    description: 'gRPC clients: deadline of a call that sets none',
  }),
  INTERNAL_HMAC_KEYS: Type.String({
    default: '',
    pattern: `^$|^${HMAC_KEY}(,${HMAC_KEY})*$`,
    secret: true,
    description:
      '/internal signing keys "keyid:secret,…" (secrets of 32+ characters); the first signs our calls, all verify; empty: /internal refuses everything',
    expected: 'comma-separated "keyid:secret" entries with secrets of at least 32 characters',
  }),
  INTERNAL_HMAC_MAX_SKEW_SECONDS: Integer({
    minimum: 1,
    maximum: 3600,
    default: 300,
    description: '/internal: how far a signature timestamp may be from our clock',
  }),
  CPU_POOL_THREADS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 256,
      description: 'worker threads for CPU-bound work (POST /api/compute); default: CPU cores - 1',
    }),
  ),
})

export type Config = Type.Static<typeof ConfigSchema>

/** The example JWT secret; prod refuses to start with it. */
export const EXAMPLE_JWT_SECRET = 'change-me-change-me-change-me-change-me'
