import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { grpcPortOf } from '../../src/container/integrations.ts'
import { parseGrpcTargets } from '../../src/infra/grpc/index.ts'
import { parseGatewayRoutes, parseNamedUpstreams } from '../../src/modules/integrations/index.ts'
import { parseSigningKeys } from '../../src/modules/internal/index.ts'

const load = (env: Record<string, string>) => loadConfig(env, { readFiles: false })

test('GRPC_PORT: off by default outside prod, 50051 in prod, off or a port when set', () => {
  assert.equal(grpcPortOf(load({ APP_ENV: 'local' })), undefined)
  assert.equal(grpcPortOf(load({ APP_ENV: 'test' })), undefined)
  assert.equal(grpcPortOf({ APP_ENV: 'prod', GRPC_PORT: undefined }), 50051)
  assert.equal(grpcPortOf({ APP_ENV: 'prod', GRPC_PORT: 'off' }), undefined)
  assert.equal(grpcPortOf(load({ GRPC_PORT: '0' })), 0)
  assert.equal(grpcPortOf(load({ GRPC_PORT: '6000' })), 6000)
  assert.throws(
    () => load({ GRPC_PORT: '65536' }),
    /GRPC_PORT="65536" is invalid: expected off, or a port/,
  )
  assert.throws(() => load({ GRPC_PORT: 'on' }), /GRPC_PORT/)
})

test('the compact list settings are checked at start-up and parsed into their parts', () => {
  const config = load({
    GATEWAY_ROUTES: '/gw/echo=http://127.0.0.1:9000,/gw/users/=http://users:8000/api/',
    AGGREGATE_UPSTREAMS: 'stock=http://s:1/stock?x=1,price=https://p/price',
    GRPC_TARGETS: 'users=127.0.0.1:50051,billing=dns:///billing:50051',
    INTERNAL_HMAC_KEYS: `new:${'n'.repeat(32)},old:${'o'.repeat(40)}`,
  })
  assert.deepEqual(parseGatewayRoutes(config.GATEWAY_ROUTES), [
    { prefix: '/gw/echo', upstream: 'http://127.0.0.1:9000' },
    { prefix: '/gw/users', upstream: 'http://users:8000/api' },
  ])
  assert.deepEqual(parseNamedUpstreams(config.AGGREGATE_UPSTREAMS), [
    { name: 'stock', url: 'http://s:1/stock?x=1' },
    { name: 'price', url: 'https://p/price' },
  ])
  assert.deepEqual(parseGrpcTargets(config.GRPC_TARGETS), {
    users: '127.0.0.1:50051',
    billing: 'dns:///billing:50051',
  })
  assert.deepEqual(parseSigningKeys(config.INTERNAL_HMAC_KEYS), [
    { keyId: 'new', secret: 'n'.repeat(32) },
    { keyId: 'old', secret: 'o'.repeat(40) },
  ])
  assert.deepEqual(parseGatewayRoutes(''), [])

  assert.throws(() => load({ GATEWAY_ROUTES: '/=http://catch-all' }), /GATEWAY_ROUTES/)
  assert.throws(() => load({ GATEWAY_ROUTES: 'gw=http://x' }), /GATEWAY_ROUTES/)
  assert.throws(() => load({ AGGREGATE_UPSTREAMS: 'a=ftp://x' }), /AGGREGATE_UPSTREAMS/)
  assert.throws(() => load({ GRPC_TARGETS: 'users=nohostport' }), /GRPC_TARGETS/)
  // A secret is never echoed, and a short one is refused.
  assert.throws(
    () => load({ INTERNAL_HMAC_KEYS: 'k:short-secret' }),
    /^ConfigError: INTERNAL_HMAC_KEYS=\(value hidden\) is invalid/,
  )
})
