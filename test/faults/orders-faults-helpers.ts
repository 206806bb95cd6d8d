/**
 * A real order cluster for the fault suite: a database of its own (SQLite file, or a fresh
 * MariaDB/PostgreSQL database), a key prefix of its own on the shared Redis, N `serve` processes
 * and M `worker` processes (`node src/main.ts ...`), plus what the tests read behind their back:
 * the database (Kysely) and the BullMQ queue. Everything is stopped, closed and dropped when the
 * test ends, failed or not.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import type { Kysely } from 'kysely'
import pino from 'pino'
import { createDatabase, type Database, type DialectName } from '../../src/infra/db/index.ts'
import { deleteKeysUnder } from '../../src/infra/redis/redis-testing.ts'
import { testConfig } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { freePort, type RunningProcess, runCli, waitForOk } from '../helpers/process.ts'
import { serviceUrls } from '../helpers/services.ts'
import {
  client,
  createItem,
  signIn,
  TEST_ENV,
  uniqueAppName,
  waitFor,
} from '../orders/order-helpers.ts'

export { waitFor }

export const DIALECT_LABEL: Readonly<Record<DialectName, string>> = {
  sqlite: 'SQLite',
  mysql: 'MariaDB',
  postgres: 'PostgreSQL',
}

export interface ClusterOptions {
  dialect: DialectName
  apis: number
  workers: number
  /** Settings for every process (API and worker), on top of the defaults below. */
  env?: Record<string, string>
}

export interface OrdersCluster {
  dialect: DialectName
  appName: string
  /** The environment every process of the cluster gets. */
  env: Record<string, string>
  /** http://127.0.0.1:<port> of each API process. */
  apis: string[]
  workers: RunningProcess[]
  /** The cluster's database, read directly. */
  db: Kysely<Database>
  /** The cluster's task queue (BullMQ), read directly. */
  queue: Queue
  redis: Redis
  /** A signed-in user's bearer token. */
  token: string
  /** Starts one more worker process; resolves once it takes tasks. */
  startWorker(): Promise<RunningProcess>
  /** Orders placed again (same Idempotency-Key) after a 503 from an overloaded machine. */
  stats: { retried: number }
}

const silent = pino({ level: 'silent' })

/**
 * Starts the cluster. Pools stay small (8 connections per process): the shared PostgreSQL allows
 * 100 connections for everyone's tests. A burst of requests queues for the pool instead, so the
 * pool wait may be long on a loaded machine (30 s, not the 5 s default).
 */
export async function startOrdersCluster(
  t: TestContext,
  options: ClusterOptions,
): Promise<OrdersCluster> {
  // One hook runs every clean-up, last registered first: processes, then connections, then the
  // Redis keys and the database.
  const cleanups: Array<() => Promise<void> | void> = []
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup()
      } catch (error) {
        t.diagnostic(`clean-up failed: ${String(error)}`)
      }
    }
  })
  const bootMs = performance.now()
  const databaseUrl = await createTestDatabase(
    { after: (fn) => cleanups.push(fn) },
    options.dialect,
  )
  const appName = uniqueAppName(`faults-${options.dialect}`)
  const redis = new Redis(serviceUrls.redis, { maxRetriesPerRequest: 3 })
  cleanups.push(async () => {
    await deleteKeysUnder(redis, appName)
    redis.disconnect()
  })
  const handle = createDatabase(
    testConfig({ DATABASE_URL: databaseUrl, DB_POOL_SIZE: '4', DB_CONNECT_TIMEOUT_MS: '30000' }),
    silent,
  )
  cleanups.push(() => handle.close())
  const queue = new Queue('tasks', { connection: redis, prefix: appName })
  cleanups.push(() => queue.close())

  const env: Record<string, string> = {
    ...TEST_ENV,
    APP_ENV: 'test',
    APP_NAME: appName,
    DATABASE_URL: databaseUrl,
    REDIS_URL: serviceUrls.redis,
    DB_POOL_SIZE: '8',
    DB_CONNECT_TIMEOUT_MS: '30000',
    LOG_LEVEL: 'warn',
    ...options.env,
  }
  const processes: RunningProcess[] = []
  cleanups.push(() => {
    for (const run of processes)
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
  })

  const apis = await Promise.all(
    Array.from({ length: options.apis }, async () => {
      const port = await freePort()
      const run = runCli(['serve'], { ...env, HOST: '127.0.0.1', PORT: String(port) })
      processes.push(run)
      const baseUrl = `http://127.0.0.1:${port}`
      await Promise.race([
        waitForOk(`${baseUrl}/ready`, 60_000),
        run.exited.then((code) => {
          throw new Error(`serve exited ${code}: ${run.output()}`)
        }),
      ])
      return baseUrl
    }),
  )

  const startWorker = async (): Promise<RunningProcess> => {
    const run = runCli(['worker'], { ...env, LOG_LEVEL: 'info' })
    processes.push(run)
    await waitFor(
      'worker ready',
      async () => {
        if (run.output().includes('"msg":"worker started')) return true
        if (run.child.exitCode !== null) throw new Error(`worker exited: ${run.output()}`)
        return undefined
      },
      60_000,
      20,
    )
    return run
  }
  const workers = await Promise.all(Array.from({ length: options.workers }, startWorker))
  const token = await signIn(apis[0] as string)
  t.diagnostic(
    `${options.apis} API + ${options.workers} worker processes on ${DIALECT_LABEL[options.dialect]} up in ${((performance.now() - bootMs) / 1000).toFixed(1)} s`,
  )
  return {
    dialect: options.dialect,
    appName,
    env,
    apis,
    workers,
    db: handle.db,
    queue,
    redis,
    token,
    startWorker,
    stats: { retried: 0 },
  }
}

export interface OrderRequest {
  item_id: string
  quantity: number
}

/**
 * Places every order at once, spread round-robin over the API processes; resolves to the order
 * ids in the same order. Every one must be accepted (202, pending). Each carries an
 * Idempotency-Key, and a 503 (a Redis or pool wait timing out on a machine loaded far past its
 * cores) is retried with the same key, as a client would: the retry cannot place a second order.
 */
export async function placeOrders(
  cluster: OrdersCluster,
  orders: readonly OrderRequest[],
): Promise<string[]> {
  const answers = await Promise.all(
    orders.map(async (body, index) => {
      const call = client(cluster.apis[index % cluster.apis.length] as string)
      const headers = { 'idempotency-key': `k-${randomBytes(8).toString('hex')}` }
      for (let attempt = 1; ; attempt++) {
        const answer = await call<{ id: string; status: string }>('POST', '/api/orders', {
          token: cluster.token,
          body,
          headers,
        })
        if (answer.status !== 503 || attempt === 4) return answer
        cluster.stats.retried++
        await sleep(250 * attempt)
      }
    }),
  )
  const refused = answers.filter(
    (answer) => answer.status !== 202 || answer.body.status !== 'pending',
  )
  assert.deepEqual(
    refused.slice(0, 3).map((answer) => [answer.status, answer.body]),
    [],
    `${refused.length} of ${orders.length} orders not accepted`,
  )
  return answers.map((answer) => answer.body.id)
}

/** Creates one item per stock, 50 at a time; resolves to their ids in the same order. */
export async function createItems(cluster: OrdersCluster, stocks: readonly number[]) {
  const ids: string[] = []
  for (let start = 0; start < stocks.length; start += 50) {
    const batch = stocks.slice(start, start + 50)
    ids.push(
      ...(await Promise.all(
        batch.map((stock, offset) =>
          createItem(
            cluster.apis[(start + offset) % cluster.apis.length] as string,
            cluster.token,
            stock,
          ),
        ),
      )),
    )
  }
  return ids
}

export interface OrderRow {
  id: string
  item_id: string
  quantity: number
  status: string
  reason: string | null
}

/** The orders of the given items (all orders without a list), read from the database. */
export async function readOrders(
  cluster: OrdersCluster,
  itemIds?: readonly string[],
): Promise<OrderRow[]> {
  let query = cluster.db
    .selectFrom('orders')
    .select(['id', 'item_id', 'quantity', 'status', 'reason'])
  if (itemIds) query = query.where('item_id', 'in', [...itemIds])
  const rows = await query.execute()
  return rows.map((row) => ({ ...row, id: String(row.id), item_id: String(row.item_id) }))
}

/** Each item's stock, by id. */
export async function readStocks(
  cluster: OrdersCluster,
  itemIds: readonly string[],
): Promise<Map<string, number>> {
  const stocks = new Map<string, number>()
  for (let start = 0; start < itemIds.length; start += 500) {
    const rows = await cluster.db
      .selectFrom('items')
      .select(['id', 'stock'])
      .where('id', 'in', itemIds.slice(start, start + 500))
      .execute()
    for (const row of rows) stocks.set(String(row.id), Number(row.stock))
  }
  return stocks
}

/** How many orders are not pending any more (all orders, or those of the given items). */
export async function settledCount(
  cluster: OrdersCluster,
  itemIds?: readonly string[],
): Promise<{ settled: number; pending: number }> {
  let query = cluster.db
    .selectFrom('orders')
    .select('status')
    .select((eb) => eb.fn.countAll().as('count'))
    .groupBy('status')
  if (itemIds) query = query.where('item_id', 'in', [...itemIds])
  const rows = await query.execute()
  const pending = Number(rows.find((row) => row.status === 'pending')?.count ?? 0)
  const all = rows.reduce((sum, row) => sum + Number(row.count), 0)
  return { settled: all - pending, pending }
}

/** Waits until no order (of the given items) is pending; resolves to the ms it took. */
export async function waitSettled(
  cluster: OrdersCluster,
  expected: number,
  itemIds?: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    `${expected} orders settled`,
    async () => {
      const { settled, pending } = await settledCount(cluster, itemIds)
      return pending === 0 && settled >= expected ? true : undefined
    },
    timeoutMs,
    25,
  )
}

/**
 * Reads one item's stock over and over while something runs, and keeps the lowest value seen.
 * stop() resolves to the samples taken and the lowest.
 */
export function sampleStock(cluster: OrdersCluster, itemId: string) {
  let isRunning = true
  let samples = 0
  let lowest = Number.POSITIVE_INFINITY
  let failures = 0
  const loop = (async () => {
    while (isRunning) {
      try {
        const row = await cluster.db
          .selectFrom('items')
          .select('stock')
          .where('id', '=', itemId)
          .executeTakeFirstOrThrow()
        samples++
        lowest = Math.min(lowest, Number(row.stock))
      } catch {
        // A read that timed out on a loaded machine is a sample less, not a failure.
        failures++
      }
      await sleep(5)
    }
  })()
  return {
    async stop(): Promise<{ samples: number; lowest: number; failures: number }> {
      isRunning = false
      await loop
      return { samples, lowest, failures }
    },
  }
}

/** BullMQ's job counts of the cluster's queue. */
export async function jobCounts(cluster: OrdersCluster) {
  return cluster.queue.getJobCounts(
    'active',
    'waiting',
    'delayed',
    'prioritized',
    'waiting-children',
    'completed',
    'failed',
  )
}

/**
 * Waits until the queue holds no job running or waiting, and resolves to its counts. A job
 * settles its order first and tells BullMQ after: settled orders do not mean finished jobs.
 */
export async function waitQueueDrained(cluster: OrdersCluster, timeoutMs = 30_000) {
  return waitFor(
    'the queue drained',
    async () => {
      const counts = await jobCounts(cluster)
      const left =
        (counts.active ?? 0) +
        (counts.waiting ?? 0) +
        (counts.delayed ?? 0) +
        (counts.prioritized ?? 0)
      return left === 0 ? counts : undefined
    },
    timeoutMs,
    25,
  )
}

/** SIGTERM, bounded: resolves to the exit code, or 'timeout' (then SIGKILLs it). */
export async function stopGracefully(run: RunningProcess, timeoutMs = 20_000) {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.exited
  run.child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    run.exited,
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    }),
  ])
  clearTimeout(timer)
  if (outcome === 'timeout') run.child.kill('SIGKILL')
  return outcome
}

/** A small seeded generator (mulberry32): the random moments of a run can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let value = state
    value = Math.imul(value ^ (value >>> 15), value | 1)
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61)
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
