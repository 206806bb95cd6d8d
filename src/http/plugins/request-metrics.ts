import type { Metric, Registry } from 'prom-client'
import type { Metrics } from '../../infra/metrics/index.ts'

/** The `route` label of requests that matched no route: one value, however many URLs are probed. */
export const UNMATCHED_ROUTE = 'unmatched'

const NAME = 'http_request_duration_seconds'
const HELP = 'HTTP requests by method, route template and status code, and how long they took.'
/** Seconds; fine at the low end, where a fast service's requests are. */
const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export interface RequestMetrics {
  /** Records one finished request; `route` is the route template (`/api/items/:id`). */
  observe(method: string, route: string | undefined, statusCode: number, seconds: number): void
}

/** One label set's histogram: a count per bucket (not yet cumulative), the sum and the count. */
interface Series {
  labels: { method: string; route: string; status_code: string }
  buckets: Float64Array
  sum: number
  count: number
}

const byRegistry = new WeakMap<Registry, RequestMetrics>()

/**
 * `http_request_duration_seconds{method,route,status_code}`: one histogram whose `_count` is the
 * request count, so a request costs one observation. Labels use the route template, never the
 * raw URL, so the series stay bounded.
 *
 * It is a prom-client collector of its own rather than a prom-client Histogram: Histogram's
 * observe validates and hashes the labels and converts the bucket bound to a property name on
 * every call, measured at about 630 ns; this one finds the series in a Map and adds to an array,
 * about 40 ns. At scrape time it reports in the exact shape prom-client's histograms do, so the
 * text format, `promtool` and the cluster aggregation treat it like any histogram.
 */
export function createRequestMetrics(metrics: Metrics): RequestMetrics {
  const known = byRegistry.get(metrics.registry)
  if (known) return known
  const series: Series[] = []

  const collector = {
    name: NAME,
    help: HELP,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      return { name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', values: report() }
    },
    reset() {
      for (const each of series) {
        each.buckets.fill(0)
        each.sum = 0
        each.count = 0
      }
    },
  }
  const report = () =>
    series.flatMap(({ labels, buckets, sum, count }) => {
      let cumulative = 0
      const values: Array<{ labels: object; value: number; metricName: string }> = BOUNDS.map(
        (bound, index) => {
          cumulative += buckets[index] ?? 0
          return {
            labels: { ...labels, le: bound },
            value: cumulative,
            metricName: `${NAME}_bucket`,
          }
        },
      )
      values.push(
        { labels: { ...labels, le: '+Inf' }, value: count, metricName: `${NAME}_bucket` },
        { labels, value: sum, metricName: `${NAME}_sum` },
        { labels, value: count, metricName: `${NAME}_count` },
      )
      return values
    })
  metrics.registry.registerMetric(collector as unknown as Metric)

  // method → route → status → series. Nested maps keyed by the values themselves: the method and
  // route strings are the same objects on every request (their hashes are cached), where a
  // concatenated key would be a new string to hash each time.
  const byMethod = new Map<string, Map<string, Map<number, Series>>>()
  const seriesOf = (method: string, route: string, statusCode: number): Series => {
    let byRoute = byMethod.get(method)
    if (byRoute === undefined) {
      byRoute = new Map()
      byMethod.set(method, byRoute)
    }
    let byStatus = byRoute.get(route)
    if (byStatus === undefined) {
      byStatus = new Map()
      byRoute.set(route, byStatus)
    }
    let found = byStatus.get(statusCode)
    if (found === undefined) {
      found = {
        labels: { method, route, status_code: String(statusCode) },
        buckets: new Float64Array(BOUNDS.length),
        sum: 0,
        count: 0,
      }
      byStatus.set(statusCode, found)
      series.push(found)
    }
    return found
  }

  const requestMetrics: RequestMetrics = {
    observe(method, route, statusCode, seconds) {
      const found = seriesOf(method, route ?? UNMATCHED_ROUTE, statusCode)
      found.count += 1
      found.sum += seconds
      let index = 0
      while (index < BOUNDS.length && seconds > (BOUNDS[index] as number)) index += 1
      if (index < BOUNDS.length) found.buckets[index] = (found.buckets[index] ?? 0) + 1
    },
  }
  byRegistry.set(metrics.registry, requestMetrics)
  return requestMetrics
}
