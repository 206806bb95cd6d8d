/**
 * Items 2 and 3: order workers that stop mid-job. A worker holds a lease (BullMQ's job lock,
 * TASK_LOCK_DURATION_MS, renewed at half that) on each order job it runs; when the lease lapses,
 * another worker takes the job back and runs it again, so an order's job may run twice, even at
 * the same time. The tests break the holder for real (SIGSTOP past the lease, then SIGCONT;
 * SIGKILL) and then count, from the database, that each order's effect was applied once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Job } from 'bullmq'
import { orderTaskId } from '../../src/modules/orders/index.ts'
import { dialectOptions } from '../helpers/db.ts'
import type { RunningProcess } from '../helpers/process.ts'
import { whenReachable } from '../helpers/services.ts'
import { expectFigure } from './figures.ts'
import {
  createItems,
  jobCounts,
  type OrdersCluster,
  placeOrders,
  readOrders,
  readStocks,
  seededRandom,
  settledCount,
  sleep,
  startOrdersCluster,
  stopGracefully,
  waitFor,
  waitQueueDrained,
  waitSettled,
} from './orders-faults-helpers.ts'

const redis = await whenReachable('redis')
const postgres = await dialectOptions('postgres')
const mariadb = await dialectOptions('mysql')

/** A 1 s lease (the least the config allows), checked for lapses every 0.5 s. */
const SHORT_LEASE = {
  TASK_LOCK_DURATION_MS: '1000',
  TASK_STALLED_INTERVAL_MS: '500',
  WORKER_CONCURRENCY: '10',
}
const LEASE_MS = 1000

/** The worker token holding a job's lease (`<worker uuid>:<n>`), or null once it lapsed. */
function leaseOf(cluster: OrdersCluster, jobId: string): Promise<string | null> {
  return cluster.redis.get(`${cluster.appName}:tasks:${jobId}:lock`)
}

/** How many of the given orders are still pending. */
async function pendingOrders(cluster: OrdersCluster, orderIds: readonly string[]) {
  if (orderIds.length === 0) return 0
  const rows = await cluster.db
    .selectFrom('orders')
    .select('id')
    .where('id', 'in', [...orderIds])
    .where('status', '=', 'pending')
    .execute()
  return rows.length
}

function jobsOf(cluster: OrdersCluster, orderIds: readonly string[]) {
  return Promise.all(orderIds.map((id) => cluster.queue.getJob(orderTaskId(id))))
}

function wasRepeated(job: Job | undefined): boolean {
  return (job?.returnvalue as { repeated?: boolean } | undefined)?.repeated === true
}

/** The worker of a lease token: BullMQ's tokens are `<worker uuid>:<n>`. */
function workerOf(lease: string): string {
  return lease.slice(0, lease.lastIndexOf(':'))
}

/** The jobs running now whose lease a worker holds, with the lease tokens. */
async function leases(cluster: OrdersCluster): Promise<Array<{ jobId: string; lease: string }>> {
  const held: Array<{ jobId: string; lease: string }> = []
  for (const job of await cluster.queue.getActive()) {
    const lease = job.id ? await leaseOf(cluster, job.id) : null
    if (job.id && lease) held.push({ jobId: job.id, lease })
  }
  return held
}

test('a lease holder paused past its lease (SIGSTOP, SIGCONT): zero double deductions', {
  skip: redis.skip || postgres.skip,
  timeout: 180_000,
}, async (t) => {
  const seed = Date.now() % 1_000_000
  const random = seededRandom(seed)
  const ROUNDS = 3
  const BATCH = 60
  const STOCK = 10
  const cluster = await startOrdersCluster(t, {
    dialect: 'postgres',
    apis: 1,
    workers: 1,
    env: SHORT_LEASE,
  })
  const everyOrder: Array<{ id: string; itemId: string; quantity: number }> = []
  const placing: Array<Promise<unknown>> = []
  let isPlacing = false
  /**
   * Places a batch in the background (one at a time), one item per order with room for two
   * deductions: a second one would show in the stock.
   */
  const placeBatch = () => {
    if (isPlacing) return
    isPlacing = true
    const batch = (async () => {
      const itemIds = await createItems(cluster, Array(BATCH).fill(STOCK))
      const requests = itemIds.map((itemId) => ({
        item_id: itemId,
        quantity: 1 + Math.floor(random() * 3),
      }))
      const jobs = () =>
        cluster.queue.getJobCountByTypes('waiting', 'active', 'completed', 'delayed', 'failed')
      const before = await jobs()
      const placed = placeOrders(cluster, requests)
      // Until some orders are in, the queue looks empty: wait for them before the next batch.
      await waitFor(
        'the batch queued',
        async () => ((await jobs()) > before ? true : undefined),
        30_000,
        5,
      )
      isPlacing = false
      for (const [index, id] of (await placed).entries())
        everyOrder.push({
          id,
          itemId: itemIds[index] as string,
          quantity: requests[index]?.quantity ?? 0,
        })
    })()
    // Awaited at the end; a failure ends the test there.
    batch.catch(() => {})
    placing.push(batch)
  }
  /** Places batches until a lease held by a worker other than `known` shows; its worker. */
  const learnWorker = (known: ReadonlySet<string>) =>
    waitFor(
      'a lease of the new worker',
      async () => {
        if ((await cluster.queue.getWaitingCount()) === 0) placeBatch()
        const lease = (await leases(cluster)).find((entry) => !known.has(workerOf(entry.lease)))
        return lease ? workerOf(lease.lease) : undefined
      },
      60_000,
      5,
    )

  // Which process is which worker: the first one runs alone until one of its leases shows; then
  // the second starts, and the first lease of another worker is its own.
  const first = cluster.workers[0] as RunningProcess
  const firstId = await learnWorker(new Set())
  const second = await cluster.startWorker()
  const secondId = await learnWorker(new Set([firstId]))
  await Promise.all(placing)
  const workers = [
    { run: first, id: firstId },
    { run: second, id: secondId },
  ]

  const rounds: string[] = []
  const heldIds: string[] = []
  let takenWhilePaused = 0
  let pendingHeld = 0
  for (let round = 0; round < ROUNDS; round++) {
    const holder = workers[round % 2] as (typeof workers)[number]
    // Stop the holder at a random moment while it runs order jobs of a fresh batch. Most of a
    // job's time goes to Redis round trips after its commit, so a stop mostly catches orders
    // already settled: up to 30 tries, it is resumed at once unless it holds the lease of an
    // order still pending (not yet committed, or inside its transaction), the case where a
    // stale holder waking up would deduct a second time without the conditional claim.
    let held: Array<{ jobId: string; lease: string }> = []
    let pendingAtPause = 0
    let tries = 0
    let pausedAt = 0
    await waitFor(
      'the holder stopped holding leases',
      async () => {
        if ((await cluster.queue.getWaitingCount()) === 0) placeBatch()
        const running = (await leases(cluster)).filter(
          (entry) => workerOf(entry.lease) === holder.id,
        )
        if (running.length === 0) return undefined
        await sleep(random() * 40)
        holder.run.child.kill('SIGSTOP')
        pausedAt = Date.now()
        // Redis still runs the commands the holder sent just before it stopped (a job's
        // completion): let them land, then see which leases it holds.
        await sleep(50)
        held = (await leases(cluster)).filter((entry) => workerOf(entry.lease) === holder.id)
        tries++
        pendingAtPause = await pendingOrders(
          cluster,
          held.map((entry) => entry.jobId.slice('order-'.length)),
        )
        if (held.length > 0 && (pendingAtPause > 0 || tries >= 30)) return true
        holder.run.child.kill('SIGCONT')
        return undefined
      },
      60_000,
      5,
    )
    const pauseMs = 3000 + Math.round(random() * 4000)
    // The other worker finds the lapsed leases and runs those jobs again while the holder is
    // stopped: each held job is leased by another worker, or done on its second try.
    const taken = await waitFor(
      'the held jobs taken over',
      async () => {
        let count = 0
        for (const { jobId, lease } of held) {
          const now = await leaseOf(cluster, jobId)
          const job = await cluster.queue.getJob(jobId)
          const isRetried = (job?.attemptsStarted ?? 0) >= 2
          if ((now !== null && now !== lease) || (isRetried && (await job?.isCompleted()))) count++
        }
        return count === held.length ? count : undefined
      },
      30_000,
      50,
    )
    const takenMs = Date.now() - pausedAt
    takenWhilePaused += taken
    heldIds.push(...held.map((entry) => entry.jobId))
    await sleep(Math.max(0, pausedAt + pauseMs - Date.now()))
    holder.run.child.kill('SIGCONT')
    const pausedMs = Date.now() - pausedAt
    pendingHeld += pendingAtPause
    rounds.push(
      `paused ${(pausedMs / 1000).toFixed(1)} s holding ${held.length} (${pendingAtPause} pending), all taken over after ${(takenMs / 1000).toFixed(1)} s`,
    )
  }
  await Promise.all(placing)
  await waitSettled(cluster, everyOrder.length)
  await waitQueueDrained(cluster)

  // Each order's effect, once: completed, and its own item's stock down by its quantity once.
  const orders = new Map((await readOrders(cluster)).map((order) => [order.id, order]))
  const stocks = await readStocks(
    cluster,
    everyOrder.map((order) => order.itemId),
  )
  let doubled = 0
  let missing = 0
  for (const order of everyOrder) {
    const stored = orders.get(order.id)
    const taken = STOCK - (stocks.get(order.itemId) ?? Number.NaN)
    if (stored?.status !== 'completed' || taken < order.quantity) missing++
    if (taken > order.quantity) doubled++
  }
  const heldJobs = await Promise.all(heldIds.map((id) => cluster.queue.getJob(id)))
  const ranAgain = heldJobs.filter((job) => (job?.attemptsStarted ?? 0) >= 2).length
  const foundSettled = heldJobs.filter(wasRepeated).length
  expectFigure(t, {
    item: 2,
    name: `order worker holding leases SIGSTOPped ${ROUNDS} times for 3–7 s against a ${LEASE_MS / 1000} s lease, another taking over, PostgreSQL`,
    measured: `${doubled} double deductions, ${missing} orders not applied, of ${everyOrder.length}; ${takenWhilePaused} of ${heldIds.length} held jobs (${pendingHeld} with the order still pending at the stop) taken over while the holder was stopped, ${ranAgain} run again (${foundSettled} found the order settled); ${rounds.join('; ')}; seed ${seed}`,
    pass: 'zero double deductions (each order applied exactly once)',
    ok:
      doubled === 0 &&
      missing === 0 &&
      orders.size === everyOrder.length &&
      heldIds.length >= ROUNDS &&
      takenWhilePaused === heldIds.length &&
      ranAgain === heldIds.length,
  })
  const counts = await jobCounts(cluster)
  assert.equal(counts.failed, 0, JSON.stringify(counts))
  // The resumed holders lost leases but nothing else: both stop cleanly.
  const codes = await Promise.all(workers.map((worker) => stopGracefully(worker.run)))
  assert.deepEqual(codes, [0, 0], workers.map((worker) => worker.run.output()).join('\n'))
})

test('a worker SIGKILLed at random moments during 1,000 order jobs: all finished, none twice', {
  skip: redis.skip || mariadb.skip,
  timeout: 180_000,
}, async (t) => {
  const seed = Date.now() % 1_000_000
  const random = seededRandom(seed)
  const ORDERS = 1000
  const ITEMS = 10
  const STOCK = 200
  const KILLS = 4
  const cluster = await startOrdersCluster(t, {
    dialect: 'mysql',
    apis: 2,
    workers: 2,
    env: SHORT_LEASE,
  })
  const itemIds = await createItems(cluster, Array(ITEMS).fill(STOCK))
  // 1,000 orders of 1 to 3 units (about 200 asked of each item: the last ones may be rejected),
  // placed 100 at a time while the workers run and die.
  const requests = Array.from({ length: ORDERS }, (_, index) => ({
    item_id: itemIds[index % ITEMS] as string,
    quantity: 1 + Math.floor(random() * 3),
  }))
  const startedMs = performance.now()
  const orderIds: string[] = []
  const placing = (async () => {
    for (let start = 0; start < ORDERS; start += 100)
      orderIds.push(...(await placeOrders(cluster, requests.slice(start, start + 100))))
  })()
  placing.catch(() => {})

  // Two worker slots. At a random point of each fifth of the run (by orders settled), a random
  // running worker is SIGKILLed and a replacement starts at once. Nothing settles while no
  // worker runs, so every kill lands mid-run.
  const thresholds = Array.from({ length: KILLS }, (_, k) =>
    Math.round((ORDERS * (k + 0.2 + 0.6 * random())) / (KILLS + 1)),
  )
  const running = [...cluster.workers]
  const replacing: Array<Promise<unknown>> = []
  const kills: string[] = []
  let inFlightAtKills = 0
  for (const threshold of thresholds) {
    await waitFor(
      `${threshold} orders settled`,
      async () => ((await settledCount(cluster)).settled >= threshold ? true : undefined),
      60_000,
      10,
    )
    // A moment with jobs in flight (the next hundred orders may still be on their way).
    const active = await waitFor(
      'a running worker with jobs in flight',
      async () => {
        if (running.length === 0 || (await cluster.queue.getActiveCount()) === 0) return undefined
        await sleep(random() * 30)
        const count = await cluster.queue.getActiveCount()
        return count > 0 ? count : undefined
      },
      60_000,
      5,
    )
    const [victim] = running.splice(Math.floor(random() * running.length), 1)
    assert.ok(victim)
    victim.child.kill('SIGKILL')
    assert.equal(await victim.exited, 'SIGKILL')
    const { settled } = await settledCount(cluster)
    kills.push(`${settled}/${active}`)
    inFlightAtKills += active
    const replacement = cluster.startWorker().then((run) => running.push(run))
    replacement.catch(() => {})
    replacing.push(replacement)
  }
  await Promise.all([placing, ...replacing])
  assert.equal(orderIds.length, ORDERS)
  await waitSettled(cluster, ORDERS, undefined, 90_000)
  await waitQueueDrained(cluster)
  const finishedMs = performance.now() - startedMs

  const counts = await jobCounts(cluster)
  const orders = await readOrders(cluster)
  const stocks = await readStocks(cluster, itemIds)
  const outbox = await cluster.db
    .selectFrom('outbox')
    .select((eb) => eb.fn.countAll().as('count'))
    .executeTakeFirstOrThrow()
  const known = new Set(orderIds)
  const finished = orders.filter((order) => order.status !== 'pending' && known.has(order.id))
  // Stock movements against completed orders, item by item: any effect applied twice shows.
  let unbalanced = 0
  for (const itemId of itemIds) {
    const sold = orders
      .filter((order) => order.item_id === itemId && order.status === 'completed')
      .reduce((sum, order) => sum + order.quantity, 0)
    const stock = stocks.get(itemId) ?? Number.NaN
    const rejectedCoverable = orders.some(
      (order) => order.item_id === itemId && order.status === 'rejected' && order.quantity <= stock,
    )
    if (STOCK - stock !== sold || stock < 0 || rejectedCoverable) unbalanced++
  }
  const jobs = await jobsOf(cluster, orderIds)
  const ranAgain = jobs.filter((job) => (job?.attemptsStarted ?? 0) >= 2).length
  const foundSettled = jobs.filter(wasRepeated).length
  const completedJobs = jobs.filter((job) => job?.finishedOn && !job.failedReason).length
  expectFigure(t, {
    item: 3,
    name: `worker SIGKILLed ${kills.length} times at random moments (each replaced) during ${ORDERS} order jobs, MariaDB, ${LEASE_MS / 1000} s lease`,
    measured: `${finished.length} of ${ORDERS} finished, ${orders.length - ORDERS} extra, ${counts.active} active, ${(counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0)} waiting, ${counts.failed} failed, ${Number(outbox.count)} in the outbox; stock taken ≠ completed quantities on ${unbalanced} of ${ITEMS} items; kills at settled/in flight ${kills.join(', ')}; ${ranAgain} jobs run again (${foundSettled} found their order settled); ${(finishedMs / 1000).toFixed(1)} s; seed ${seed}`,
    pass: `${ORDERS} finished, none lost, none left active, no duplicated effect; ≥ 3 kills`,
    ok:
      kills.length >= 3 &&
      finished.length === ORDERS &&
      orders.length === ORDERS &&
      completedJobs === ORDERS &&
      counts.active === 0 &&
      counts.failed === 0 &&
      Number(outbox.count) === 0 &&
      unbalanced === 0,
  })
  // Every kill caught jobs in flight, and they ran again on the next worker.
  assert.ok(inFlightAtKills >= KILLS, `in flight at the kills: ${kills.join(', ')}`)
  assert.ok(ranAgain >= 1, 'some jobs were taken back from a killed worker')
  const codes = await Promise.all(running.map((run) => stopGracefully(run)))
  assert.deepEqual(codes, [0, 0], running.map((run) => run.output()).join('\n'))
})
