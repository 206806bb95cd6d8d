export { createCacheNonceStore } from './cache-nonce-store.ts'
export { internalRoutes } from './internal-routes.ts'
export { parseSigningKeys } from './signing-keys.ts'
