import type { Cache } from '../../infra/cache/index.ts'
import { TOKEN_CLOCK_TOLERANCE_SECONDS } from '../../shared/tokens.ts'

/**
 * Which issued tokens are still live, per token and per user. Expiry times are the tokens' exp
 * claims: seconds since the epoch.
 */
export interface TokenStore {
  /** Records a token just issued to `userId`; login must await it before answering. */
  remember(userId: string, jti: string, expiresAt: number): Promise<void>
  /** Ends one token (logout). */
  revoke(jti: string): Promise<void>
  /** True unless the token was remembered and has not been revoked: one cache read. */
  isRevoked(jti: string): Promise<boolean>
  /** Ends every remembered token of the user (logout everywhere). */
  revokeAll(userId: string): Promise<void>
}

export interface TokenStoreOptions {
  /** The memory cache in embedded mode, Redis in distributed mode; it prefixes keys with APP_NAME. */
  cache: Cache
  /** Milliseconds since the epoch; tests pass the clock their cache uses. */
  now?: () => number
}

/**
 * Keys (relative to the cache's `${APP_NAME}:` prefix):
 * - `auth:token:<jti>` → user id, expiring with the token: the token is live while the key exists.
 * - `auth:user-tokens:<userId>` → hash of jti → exp, the user's token list (as the Python service
 *   kept it), expiring with the user's last token; expired fields are pruned at each login.
 */
const tokenKey = (jti: string) => `auth:token:${jti}`
const userTokensKey = (userId: string) => `auth:user-tokens:${userId}`

/**
 * The token store on the Cache interface. It keeps the live tokens (an allow-list) rather than
 * the revoked ones (a deny-list), for one reason: a cache may lose keys (LRU eviction in the
 * bounded memory cache or under Redis `maxmemory`, a Redis restart without persistence). Losing
 * an allow-list entry logs one session out; losing a deny-list entry would quietly bring a
 * revoked token back to life. Either way each entry lives only as long as its token, so the
 * store never grows past the tokens currently valid, and `isRevoked` is a single EXISTS.
 * A cache outage rejects (AppError 'unavailable'): authentication fails closed, with a 503.
 */
export function createTokenStore({ cache, now = Date.now }: TokenStoreOptions): TokenStore {
  /** Seconds a key must live to outlast the token, with the verifier's clock tolerance. */
  const ttlFor = (expiresAt: number) =>
    Math.ceil(expiresAt - now() / 1000) + TOKEN_CLOCK_TOLERANCE_SECONDS

  return {
    async remember(userId, jti, expiresAt) {
      const ttlSeconds = ttlFor(expiresAt)
      if (ttlSeconds <= 0) return
      const listKey = userTokensKey(userId)
      // The list first: should the second write fail, the token is refused (not yet live) rather
      // than live and missing from the list logout-all walks.
      await pruneExpired(cache, listKey, now())
      await cache.hashSet(listKey, { [jti]: String(expiresAt) })
      const listTtl = await cache.ttl(listKey)
      if (listTtl < ttlSeconds) await cache.expire(listKey, ttlSeconds)
      await cache.set(tokenKey(jti), userId, ttlSeconds)
    },

    async revoke(jti) {
      const key = tokenKey(jti)
      const userId = await cache.get(key)
      if (userId === undefined) return
      await cache.delete(key)
      await cache.hashDelete(userTokensKey(userId), jti)
    },

    async isRevoked(jti) {
      return !(await cache.exists(tokenKey(jti)))
    },

    async revokeAll(userId) {
      const listKey = userTokensKey(userId)
      const jtis = Object.keys(await cache.hashGetAll(listKey))
      if (jtis.length === 0) return
      await cache.delete(...jtis.map(tokenKey))
      // Only the fields read above: a token remembered meanwhile by a concurrent login stays
      // listed (and live), never live and unlisted.
      await cache.hashDelete(listKey, ...jtis)
    },
  }
}

async function pruneExpired(cache: Cache, listKey: string, nowMs: number): Promise<void> {
  const entries = await cache.hashGetAll(listKey)
  const expired = Object.keys(entries).filter(
    (jti) => (Number(entries[jti]) + TOKEN_CLOCK_TOLERANCE_SECONDS) * 1000 <= nowMs,
  )
  if (expired.length > 0) await cache.hashDelete(listKey, ...expired)
}
