export { instrumentCache } from './cache-metrics.ts'
export {
  type ClusterMetricsClient,
  joinClusterMetrics,
  serveClusterMetrics,
} from './cluster-metrics.ts'
export { registerDatabaseMetrics } from './database-metrics.ts'
export { createMetrics, type MetricSpec, type Metrics, type MetricsOptions } from './metrics.ts'
export { type MetricsServer, serveMetrics } from './metrics-server.ts'
