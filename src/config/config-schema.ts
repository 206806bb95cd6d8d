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
})

export type Config = Type.Static<typeof ConfigSchema>

/** The example JWT secret; prod refuses to start with it. */
export const EXAMPLE_JWT_SECRET = 'change-me-change-me-change-me-change-me'
