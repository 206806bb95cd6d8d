import type { DatabaseHandle } from '../db/index.ts'
import type { Metrics } from './metrics.ts'

/**
 * Connection-pool gauges read at scrape time: `db_pool_connections{state="in_use"|"idle"}`,
 * `db_pool_max_connections` and `db_pool_waiting_queries` (queries queued for a connection: above
 * zero for long, the pool is too small or queries too slow). SQLite has no pool: nothing is
 * registered for it.
 */
export function registerDatabaseMetrics(
  metrics: Metrics,
  db: Pick<DatabaseHandle, 'poolStats'>,
): void {
  const read = () => db.poolStats?.()
  if (read() === undefined) return
  metrics.gauge({
    name: 'db_pool_connections',
    help: 'Open database pool connections, in use or idle.',
    labelNames: ['state'] as const,
    collect() {
      const stats = read()
      if (!stats) return
      this.set({ state: 'in_use' }, stats.open - stats.idle)
      this.set({ state: 'idle' }, stats.idle)
    },
  })
  metrics.gauge({
    name: 'db_pool_max_connections',
    help: 'The most connections the database pool opens (DB_POOL_SIZE).',
    collect() {
      this.set(read()?.max ?? 0)
    },
  })
  metrics.gauge({
    name: 'db_pool_waiting_queries',
    help: 'Queries waiting for a free database pool connection.',
    collect() {
      this.set(read()?.waiting ?? 0)
    },
  })
}
