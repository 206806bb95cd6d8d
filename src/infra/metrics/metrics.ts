import { performance } from 'node:perf_hooks'
import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type Metric,
  Registry,
} from 'prom-client'
import { joinClusterMetrics } from './cluster-metrics.ts'

/**
 * The process's Prometheus metrics: one registry per container (never prom-client's global one,
 * so tests and commands can each build their own), with helpers that every module uses to
 * register what it measures. Names follow Prometheus conventions: snake_case, the unit as a
 * suffix (`_seconds`, `_bytes`), `_total` for counters; label values must come from a small,
 * fixed set (a route template, a status code), never from user input (an id, a URL).
 *
 * Creating a metric whose name is already registered returns the existing one, so a module may
 * be set up more than once (per test, per worker) without "already registered" errors.
 */
export interface Metrics {
  readonly registry: Registry
  counter<L extends string = string>(config: MetricSpec<L>): Counter<L>
  /** A gauge; give `collect` to compute its value at scrape time instead of on every change. */
  gauge<L extends string = string>(
    config: MetricSpec<L> & Pick<GaugeConfiguration<L>, 'collect' | 'aggregator'>,
  ): Gauge<L>
  /** A histogram; `buckets` in the metric's unit (seconds for durations). */
  histogram<L extends string = string>(
    config: MetricSpec<L> & Pick<HistogramConfiguration<L>, 'buckets'>,
  ): Histogram<L>
  /** This process's metrics in the Prometheus text format. */
  render(): Promise<string>
  /** What GET /metrics answers: this process's metrics, or in a cluster worker every worker's. */
  scrape(): Promise<string>
  readonly contentType: string
  /** Stops answering the cluster primary; the registry itself needs no closing. */
  close(): void
}

/** What every metric declares: its name, a one-line help text and its label names. */
export interface MetricSpec<L extends string> {
  name: string
  help: string
  labelNames?: readonly L[]
}

export interface MetricsOptions {
  /** Node's process and runtime metrics: CPU, heap, RSS, GC, event-loop delay and utilisation. */
  isCollectingRuntime?: boolean
  /** A worker of `serve --workers N`: scrapes sum every worker's metrics through the primary. */
  isClusterWorker?: boolean
}

/** Creates the registry and, unless turned off, registers the runtime metrics. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  if (options.isCollectingRuntime ?? true) registerRuntimeMetrics(registry)
  const cluster = options.isClusterWorker ? joinClusterMetrics(registry) : undefined

  const existing = <M extends Metric>(name: string, kind: new (...args: never[]) => M) => {
    const found = registry.getSingleMetric(name)
    if (found === undefined) return undefined
    if (!(found instanceof kind)) {
      throw new Error(`metric ${name} is already registered as another type`)
    }
    return found as M
  }

  return {
    registry,
    counter: <L extends string>(config: MetricSpec<L>) =>
      existing<Counter<L>>(config.name, Counter) ??
      new Counter<L>({ ...(config as CounterConfiguration<L>), registers: [registry] }),
    gauge: <L extends string>(config: MetricSpec<L> & Partial<GaugeConfiguration<L>>) =>
      existing<Gauge<L>>(config.name, Gauge) ??
      new Gauge<L>({ ...(config as GaugeConfiguration<L>), registers: [registry] }),
    histogram: <L extends string>(config: MetricSpec<L> & Partial<HistogramConfiguration<L>>) =>
      existing<Histogram<L>>(config.name, Histogram) ??
      new Histogram<L>({ ...(config as HistogramConfiguration<L>), registers: [registry] }),
    render: () => registry.metrics(),
    scrape: () => (cluster ? cluster.scrape() : registry.metrics()),
    contentType: registry.contentType,
    close: () => cluster?.close(),
  }
}

const TOTAL_NAMED_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]

/**
 * prom-client's default metrics (process CPU, RSS, heap spaces, GC, handles, event-loop delay
 * percentiles) plus the event-loop utilisation, which it does not have: the share of time the
 * loop was busy since the previous scrape, the best single saturation signal of a Node process.
 */
function registerRuntimeMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 })
  // Gauges named like counters, which `promtool check metrics` rejects; each is the sum of the
  // per-type gauge without the suffix (nodejs_active_handles{type}), so nothing is lost.
  for (const name of TOTAL_NAMED_GAUGES) registry.removeSingleMetric(name)
  let last = performance.eventLoopUtilization()
  new Gauge({
    name: 'nodejs_eventloop_utilization_ratio',
    help: 'Share of time the event loop was busy since the previous scrape (0 to 1).',
    registers: [registry],
    aggregator: 'average',
    collect() {
      const now = performance.eventLoopUtilization()
      this.set(performance.eventLoopUtilization(now, last).utilization)
      last = now
    },
  })
}
