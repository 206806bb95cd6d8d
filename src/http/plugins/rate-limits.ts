import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../../config/index.ts'
import { AppError } from '../../shared/errors.ts'
import type { App } from '../server.ts'
import { batchedRedisStore } from './batched-rate-limit-store.ts'

type RateLimitSettings = Pick<
  Config,
  'APP_NAME' | 'RATE_LIMIT_PER_MINUTE' | 'RATE_LIMIT_USER_PER_MINUTE' | 'RATE_LIMIT_ROUTES'
>

const MINUTE_MS = 60_000

const rateLimited = (retryAfterSeconds: number) =>
  new AppError(
    'rate_limited',
    'RATE_LIMITED',
    `Rate limit exceeded, retry in ${retryAfterSeconds} seconds`,
  )

/** Checks the per-user limit; run it after authentication has set request.principal. */
export type UserRateLimit = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/**
 * Rate limits with @fastify/rate-limit: per client address on every route, stricter per-route
 * limits from RATE_LIMIT_ROUTES (login above all, against password guessing), and per user on
 * authenticated routes. Counters live in Redis when it is configured, so the limits hold across
 * replicas (one call per counter in flight at a time: batched-rate-limit-store.ts), and in
 * memory otherwise. Answers 429 with Retry-After and RateLimit-* headers.
 *
 * A Redis outage skips the check rather than refusing all traffic: availability over limits.
 */
export async function registerRateLimits(
  app: App,
  config: RateLimitSettings,
  redis: Redis | undefined,
): Promise<UserRateLimit> {
  const routeLimits = parseRouteLimits(config.RATE_LIMIT_ROUTES)
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      const max = routeLimits.get(`${method} ${route.url}`)
      if (max !== undefined)
        route.config = { ...(route.config as object), rateLimit: { max, timeWindow: MINUTE_MS } }
    }
  })

  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: MINUTE_MS,
    ...(redis ? { store: batchedRedisStore(redis, `${config.APP_NAME}:rate-limit:`) } : {}),
    skipOnError: true,
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) => rateLimited(Math.ceil(context.ttl / 1000)),
  })

  const checkUser = app.createRateLimit({
    max: config.RATE_LIMIT_USER_PER_MINUTE,
    timeWindow: MINUTE_MS,
    keyGenerator: (request) => `user:${request.principal?.userId ?? request.ip}`,
  })
  return async (request, reply) => {
    const limit = await checkUser(request)
    if (limit.isAllowed) return
    reply.header('ratelimit-limit', limit.max)
    reply.header('ratelimit-remaining', limit.remaining)
    reply.header('ratelimit-reset', limit.ttlInSeconds)
    if (limit.isExceeded) {
      reply.header('retry-after', limit.ttlInSeconds)
      throw rateLimited(limit.ttlInSeconds)
    }
  }
}

/** "POST /api/auth/login=10,…" → Map { "POST /api/auth/login" → 10 } */
export function parseRouteLimits(spec: string): Map<string, number> {
  const limits = new Map<string, number>()
  for (const entry of spec.split(',').filter(Boolean)) {
    const at = entry.lastIndexOf('=')
    limits.set(entry.slice(0, at).trim(), Number(entry.slice(at + 1)))
  }
  return limits
}
