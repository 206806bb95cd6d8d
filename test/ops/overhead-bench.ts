// What the operations layer costs per request. Not part of `npm test` (it takes a minute and its
// figures depend on the machine); run it by hand:
//   npx node test/ops/overhead-bench.ts [--micro]
// 1. One request-metrics observation (the hot path: a Map lookup and a histogram observe).
// 2. The whole app on GET /health with METRICS_ENABLED=true against false, alternating runs,
//    with autocannon (50 connections): the difference is what metrics cost end to end.
import autocannon from 'autocannon'
import { createContainer } from '../../src/container/index.ts'
import { createRequestMetrics } from '../../src/http/plugins/request-metrics.ts'
import { createServer } from '../../src/http/server.ts'
import { createMetrics } from '../../src/infra/metrics/index.ts'
import { testConfig } from '../helpers/app.ts'

function observeCost(): number {
  const metrics = createRequestMetrics(createMetrics({ isCollectingRuntime: false }))
  const routes = ['/health', '/api/items', '/api/items/:id', undefined]
  const rounds = 2_000_000
  for (let i = 0; i < 100_000; i++) metrics.observe('GET', routes[i & 3], 200, 0.001)
  const started = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) metrics.observe('GET', routes[i & 3], 200 + (i & 1), 0.0012)
  return Number(process.hrtime.bigint() - started) / rounds
}

async function requestsPerSecond(isMetricsEnabled: boolean, seconds: number): Promise<number> {
  const config = testConfig({
    METRICS_ENABLED: String(isMetricsEnabled),
    RATE_LIMIT_PER_MINUTE: '100000000',
  })
  const container = await createContainer(config)
  const app = await createServer(container)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/health`,
    connections: 50,
    duration: seconds,
  })
  await app.close()
  await container.close()
  return result.requests.average
}

console.log(`request-metrics observe: ${observeCost().toFixed(0)} ns per request`)
// `--micro`: the observation cost only (the end-to-end runs need an otherwise idle machine).
if (process.argv.includes('--micro')) process.exit(0)
const runs: Record<'on' | 'off', number[]> = { on: [], off: [] }
await requestsPerSecond(true, 2) // warm-up
for (let round = 0; round < 3; round++) {
  runs.off.push(await requestsPerSecond(false, 5))
  runs.on.push(await requestsPerSecond(true, 5))
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[1] ?? 0
const on = median(runs.on)
const off = median(runs.off)
console.log(`GET /health, metrics off: ${off.toFixed(0)} req/s (runs ${runs.off.map(Math.round)})`)
console.log(`GET /health, metrics on:  ${on.toFixed(0)} req/s (runs ${runs.on.map(Math.round)})`)
console.log(
  `metrics cost: ${(((off - on) / off) * 100).toFixed(1)} % of throughput, ${((1e6 / on - 1e6 / off) * 1000).toFixed(0)} ns per request`,
)
