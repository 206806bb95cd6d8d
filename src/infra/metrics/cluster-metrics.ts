import type { Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'

/** One registry's metrics as JSON, the form they cross the IPC channel in. */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/**
 * Metrics across `serve --workers N`: whichever worker gets GET /metrics asks the primary, the
 * primary collects every serving worker's metrics over IPC and sums them with prom-client's
 * AggregatorRegistry (counters and histograms add up; gauges say how they combine), and the
 * worker answers with the total. One scrape target, on the port that already serves traffic.
 */

const COLLECT = 'servekit:metrics-collect'
const COLLECTED = 'servekit:metrics-collected'
const SCRAPE = 'servekit:metrics-scrape'
const SCRAPED = 'servekit:metrics-scraped'

interface CollectMessage {
  type: typeof COLLECT
  id: number
}
interface CollectedMessage {
  type: typeof COLLECTED
  id: number
  metrics?: MetricsJson
  error?: string
}
interface ScrapeMessage {
  type: typeof SCRAPE
  id: number
}
interface ScrapedMessage {
  type: typeof SCRAPED
  id: number
  text?: string
  error?: string
}

type Message = { type?: unknown; id?: unknown }

/** A worker's side: answers the primary's collection requests and asks it for the total. */
export interface ClusterMetricsClient {
  /** Every worker's metrics, summed, in the Prometheus text format. */
  scrape(): Promise<string>
  close(): void
}

/** In a cluster worker: serves this registry to the primary and scrapes through it. */
export function joinClusterMetrics(registry: Registry, timeoutMs = 5000): ClusterMetricsClient {
  let nextId = 0
  const pending = new Map<number, (message: ScrapedMessage) => void>()
  const onMessage = (message: Message) => {
    if (message?.type === COLLECT) {
      const { id } = message as CollectMessage
      registry.getMetricsAsJSON().then(
        (metrics) => send({ type: COLLECTED, id, metrics } satisfies CollectedMessage),
        (error: Error) => send({ type: COLLECTED, id, error: error.message }),
      )
    } else if (message?.type === SCRAPED) {
      pending.get((message as ScrapedMessage).id)?.(message as ScrapedMessage)
    }
  }
  process.on('message', onMessage)
  return {
    scrape() {
      const id = nextId++
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`the cluster primary did not answer within ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, (message) => {
          clearTimeout(timer)
          pending.delete(id)
          if (message.text === undefined) reject(new Error(message.error ?? 'no metrics'))
          else resolve(message.text)
        })
        send({ type: SCRAPE, id } satisfies ScrapeMessage)
      })
    },
    close() {
      process.off('message', onMessage)
    },
  }
}

function send(message: object): void {
  // The channel closes when the primary is gone; the scrape then times out, nothing to do here.
  if (process.connected) process.send?.(message, undefined, undefined, () => undefined)
}

/**
 * The primary's side: when a worker asks (a scrape), collect from `workers()` — those serving
 * now — and answer with the sum. A worker that does not answer in time is left out of this
 * scrape rather than failing it; the total is then briefly low, which Prometheus shows as a
 * counter reset, the same as a restarted worker.
 */
export function serveClusterMetrics(
  workers: () => Worker[],
  onWorkerMessage: (listener: (worker: Worker, message: Message) => void) => void,
  timeoutMs = 2000,
): void {
  let nextId = 0
  const collecting = new Map<number, (worker: Worker, message: CollectedMessage) => void>()

  const collect = (): Promise<string> => {
    const targets = workers().filter((worker) => worker.isConnected())
    const id = nextId++
    return new Promise((resolve) => {
      const results: MetricsJson[] = []
      let waiting = targets.length
      const finish = () => {
        clearTimeout(timer)
        collecting.delete(id)
        resolve(AggregatorRegistry.aggregate(results).metrics())
      }
      const timer = setTimeout(finish, timeoutMs)
      collecting.set(id, (_worker, message) => {
        if (message.metrics) results.push(message.metrics)
        waiting -= 1
        if (waiting === 0) finish()
      })
      if (waiting === 0) finish()
      for (const worker of targets) worker.send({ type: COLLECT, id } satisfies CollectMessage)
    })
  }

  onWorkerMessage((worker, message) => {
    if (message?.type === COLLECTED) {
      const collected = message as CollectedMessage
      collecting.get(collected.id)?.(worker, collected)
    } else if (message?.type === SCRAPE) {
      const { id } = message as ScrapeMessage
      collect().then(
        (text) => worker.isConnected() && worker.send({ type: SCRAPED, id, text }),
        (error: Error) =>
          worker.isConnected() && worker.send({ type: SCRAPED, id, error: error.message }),
      )
    }
  })
}
