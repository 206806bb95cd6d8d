import type { Cache } from '../../infra/cache/index.ts'
import type { NonceStore } from '../../shared/hmac-signing.ts'

/**
 * Nonces remembered in the shared cache (Redis in distributed mode), so a signed request
 * replayed to another replica is refused too. `increment` is atomic and sets the TTL on a new
 * key: the first caller sees 1, every replay more.
 */
export function createCacheNonceStore(cache: Pick<Cache, 'increment'>): NonceStore {
  return {
    async remember(nonce, ttlSeconds) {
      return (await cache.increment(`hmac-nonce:${nonce}`, 1, ttlSeconds)) === 1
    },
  }
}
