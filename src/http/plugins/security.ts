import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import Fastify from 'fastify'
import type { Config } from '../../config/index.ts'
import type { App } from '../server.ts'

/** Response headers a browser client may read besides the CORS-safelisted ones. */
const EXPOSED_HEADERS = [
  'x-request-id',
  'traceparent',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
]

/**
 * The security headers of @fastify/helmet (CSP, HSTS, X-Content-Type-Options, frame and
 * cross-origin policies, …), computed once at start-up. Registered as a plugin, @fastify/helmet
 * builds its middleware again for every request: measured here on a hello-world route, 27k
 * instead of 45k requests/s. These headers do not depend on the request, so one helmet run
 * against a probe app gives them all, and each response then gets a precomputed set.
 *
 * The CSP is helmet's default without `upgrade-insecure-requests`: Swagger UI (/docs) and the
 * HTML pages load scripts and styles from this origin only, and that directive would send their
 * browsers to https:// for them on a plain-HTTP deployment (local runs, internal networks).
 * HSTS is sent in prod and over TLS only, so a developer's localhost is never pinned to HTTPS.
 */
export function computeSecurityHeaders(
  config: Pick<Config, 'APP_ENV' | 'TLS_CERT_FILE'>,
): Promise<Readonly<Record<string, string>>> {
  const isHttps = config.APP_ENV === 'prod' || config.TLS_CERT_FILE !== undefined
  let headers = computed.get(isHttps)
  if (!headers) {
    headers = runHelmet(isHttps)
    computed.set(isHttps, headers)
  }
  return headers
}

/** One helmet run per process and variant: the headers depend on nothing else. */
const computed = new Map<boolean, Promise<Readonly<Record<string, string>>>>()

async function runHelmet(isHttps: boolean): Promise<Readonly<Record<string, string>>> {
  const probe = async (withHelmet: boolean) => {
    const app = Fastify()
    if (withHelmet) {
      await app.register(helmet, {
        contentSecurityPolicy: {
          useDefaults: true,
          directives: { 'upgrade-insecure-requests': null },
        },
        ...(isHttps ? {} : { strictTransportSecurity: false }),
      })
    }
    app.get('/', async () => 'probe')
    const response = await app.inject('/')
    await app.close()
    return response.headers
  }
  const [plain, secured] = await Promise.all([probe(false), probe(true)])
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(secured)) {
    if (!(name in plain) && typeof value === 'string') headers[name] = value
  }
  return Object.freeze(headers)
}

/**
 * CORS from CORS_ORIGINS: exact origins (or `*`, never with credentials: the config refuses
 * that). Another origin gets no Access-Control-Allow-Origin, so the browser keeps the response
 * from its script. With CORS_ORIGINS empty nothing is registered and no origin is granted.
 */
export async function registerCors(
  app: App,
  config: Pick<Config, 'CORS_ORIGINS' | 'CORS_ALLOW_CREDENTIALS'>,
): Promise<void> {
  if (config.CORS_ORIGINS === '') return
  await app.register(cors, {
    origin: config.CORS_ORIGINS === '*' ? '*' : config.CORS_ORIGINS.split(','),
    credentials: config.CORS_ALLOW_CREDENTIALS,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  })
}
