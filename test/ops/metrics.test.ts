import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { createContainer } from '../../src/container/index.ts'
import { createMemoryCache } from '../../src/infra/cache/index.ts'
import { createMetrics, instrumentCache } from '../../src/infra/metrics/index.ts'
import { buildTestApp, testConfig } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { whenReachable } from '../helpers/services.ts'
import { which } from './ops-helpers.ts'

const promtool = which('promtool')

/** The value of one sample line (`name{labels} value`) of a Prometheus text, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const given = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))
    if (given) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

async function signUp(baseUrl: string): Promise<string> {
  const json = { 'content-type': 'application/json' }
  const credentials = JSON.stringify({ username: 'metrics-user', password: 'correct horse' })
  await fetch(`${baseUrl}/api/auth/register`, { method: 'POST', headers: json, body: credentials })
  const login = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: json,
    body: credentials,
  })
  return ((await login.json()) as { access_token: string }).access_token
}

test('GET /metrics: requests by route template, method and status, runtime and cache metrics', async (t) => {
  const { baseUrl } = await buildTestApp(t, { BCRYPT_COST: '4' })
  const token = await signUp(baseUrl)
  const created = await fetch(`${baseUrl}/api/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'lamp', price: 9.5, stock: 3 }),
  })
  const { id } = (await created.json()) as { id: string }
  assert.equal((await fetch(`${baseUrl}/api/items/${id}`)).status, 200) // miss, then cached
  assert.equal((await fetch(`${baseUrl}/api/items/${id}`)).status, 200) // hit
  assert.equal((await fetch(`${baseUrl}/api/items/987654321`)).status, 404) // miss
  assert.equal((await fetch(`${baseUrl}/no/such/page-4711?q=1`)).status, 404)

  const response = await fetch(`${baseUrl}/metrics`)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const text = await response.text()

  const count = (labels: Record<string, string>) =>
    sample(text, 'http_request_duration_seconds_count', labels)
  assert.equal(count({ method: 'GET', route: '/api/items/:id', status_code: '200' }), 2)
  assert.equal(count({ method: 'GET', route: '/api/items/:id', status_code: '404' }), 1)
  assert.equal(count({ method: 'POST', route: '/api/items', status_code: '201' }), 1)
  assert.equal(count({ method: 'GET', route: 'unmatched', status_code: '404' }), 1)
  assert.ok(
    (sample(text, 'http_request_duration_seconds_bucket', {
      route: '/api/items/:id',
      le: '+Inf',
    }) ?? 0) >= 1,
  )
  // Raw URLs never become label values: the series stay bounded whatever clients send.
  assert.doesNotMatch(text, /987654321|page-4711|q=1/)
  assert.ok(!text.includes(`route="/api/items/${id}"`))

  assert.equal(sample(text, 'cache_hits_total', { cache: 'items' }), 1)
  assert.equal(sample(text, 'cache_misses_total', { cache: 'items' }), 2)
  for (const name of [
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_eventloop_utilization_ratio',
    'nodejs_heap_size_used_bytes',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
  ]) {
    assert.ok((sample(text, name) ?? -1) >= 0, `${name} is missing`)
  }
  const utilisation = sample(text, 'nodejs_eventloop_utilization_ratio') ?? -1
  assert.ok(utilisation >= 0 && utilisation <= 1)
})

test('promtool check metrics accepts the /metrics output', {
  skip: promtool
    ? false
    : 'promtool is not installed (apt-get install prometheus; scripts/ensure-tools.sh does it in CI)',
}, async (t) => {
  const { baseUrl } = await buildTestApp(t)
  await fetch(`${baseUrl}/health`)
  await fetch(`${baseUrl}/nothing-here`)
  await fetch(`${baseUrl}/api/items/1`)
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const check = spawnSync(promtool as string, ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
  })
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`)
})

test('METRICS_ENABLED=false: no /metrics route', async (t) => {
  const { baseUrl } = await buildTestApp(t, { METRICS_ENABLED: 'false' })
  assert.equal((await fetch(`${baseUrl}/metrics`)).status, 404)
})

test('the cache wrapper counts hits, misses and errors per cache name', async () => {
  const metrics = createMetrics({ isCollectingRuntime: false })
  const memory = createMemoryCache({ prefix: 't', maxEntries: 100 })
  const cache = instrumentCache(memory, metrics, 'probe')
  await cache.set('a', '1')
  assert.equal(await cache.get('a'), '1')
  assert.equal(await cache.get('b'), undefined)
  assert.equal(await cache.getJson('c'), undefined)
  await cache.hashSet('h', { f: 'v' })
  assert.equal(await cache.hashGet('h', 'f'), 'v')
  const down = new Proxy(memory, {
    get: (target, name) =>
      name === 'get'
        ? () => Promise.reject(new Error('connection refused'))
        : Reflect.get(target, name, target),
  })
  await assert.rejects(instrumentCache(down, metrics, 'probe').get('a'), /connection refused/)
  await memory.close()
  const text = await metrics.render()
  assert.equal(sample(text, 'cache_hits_total', { cache: 'probe' }), 2)
  assert.equal(sample(text, 'cache_misses_total', { cache: 'probe' }), 2)
  assert.equal(sample(text, 'cache_errors_total', { cache: 'probe' }), 1)
})

test('modules register their own metrics through container.metrics; a name is registered once', async () => {
  const metrics = createMetrics({ isCollectingRuntime: false })
  const first = metrics.gauge({ name: 'ws_connections', help: 'Open WebSocket connections.' })
  const again = metrics.gauge({ name: 'ws_connections', help: 'Open WebSocket connections.' })
  assert.equal(first, again)
  first.inc()
  const jobs = metrics.histogram({
    name: 'job_duration_seconds',
    help: 'Job run time.',
    labelNames: ['job', 'outcome'] as const,
    buckets: [0.1, 1, 10],
  })
  jobs.observe({ job: 'orders.deduct-stock', outcome: 'completed' }, 0.2)
  assert.throws(() => metrics.counter({ name: 'ws_connections', help: 'x' }), /another type/)
  const text = await metrics.render()
  assert.equal(sample(text, 'ws_connections'), 1)
  assert.equal(sample(text, 'job_duration_seconds_count', { job: 'orders.deduct-stock' }), 1)
})

for (const dialect of ['mysql', 'postgres'] as const) {
  test(`database pool gauges on ${dialect}`, await whenReachable(dialect), async (t) => {
    const url = await createTestDatabase(t, dialect)
    const container = await createContainer(testConfig({ DATABASE_URL: url, DB_POOL_SIZE: '4' }))
    t.after(() => container.close())
    await container.db.ping()
    const text = await container.metrics.render()
    assert.equal(sample(text, 'db_pool_max_connections'), 4)
    const inUse = sample(text, 'db_pool_connections', { state: 'in_use' })
    const idle = sample(text, 'db_pool_connections', { state: 'idle' })
    assert.ok(inUse !== undefined && idle !== undefined && idle >= 1, text)
    assert.equal(sample(text, 'db_pool_waiting_queries'), 0)
  })
}

test('SQLite has no pool: no pool gauges', async (t) => {
  const container = await createContainer(testConfig())
  t.after(() => container.close())
  assert.doesNotMatch(await container.metrics.render(), /db_pool_/)
})
