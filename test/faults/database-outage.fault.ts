import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { createDatabase, migrateToLatest } from '../../src/infra/db/index.ts'
import { testConfig } from '../helpers/app.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'
import {
  createItem,
  deleteRedisKeys,
  signIn,
  startCommand,
  uniqueAppName,
} from '../orders/order-helpers.ts'
import { expectFigure } from './figures.ts'
import {
  crashLines,
  PROCESS_ENV,
  type Probe,
  probe,
  sleep,
  startServe,
  terminate,
} from './outage-helpers.ts'
import {
  cleanupStack,
  type PrivateServer,
  startPrivateMariadb,
  startPrivatePostgres,
} from './private-servers.ts'

const DOWN_MS = 10_000
const ORDERS_BEFORE = 30
/** How often the load balancer probes /ready during the outage. */
const READY_PROBE_MS = 1000
const SETTLE_TIMEOUT_MS = 90_000

const redis = await whenReachable('redis')

interface Round {
  placeOrder: Probe
  readOrder: Probe
  createItem: Probe
}

const SERVERS: Array<{ name: string; start: (t: never) => Promise<PrivateServer> }> = [
  { name: 'PostgreSQL', start: startPrivatePostgres },
  { name: 'MariaDB', start: startPrivateMariadb },
]

for (const { name, start } of SERVERS) {
  test(`${name} stopped for 10 s: /ready fails, 503 never 500, pending orders finish`, {
    timeout: 240_000,
    ...redis,
  }, async (t) => {
    const cleanup = cleanupStack(t)
    const server = await (start as (t: unknown) => Promise<PrivateServer>)(cleanup)
    const migrator = createDatabase(
      testConfig({ DATABASE_URL: server.url }),
      pino({ level: 'silent' }),
    )
    try {
      await migrateToLatest(migrator)
    } finally {
      await migrator.close()
    }
    const appName = uniqueAppName('db-outage')
    const env = {
      ...PROCESS_ENV,
      APP_NAME: appName,
      REDIS_URL: serviceUrls.redis,
      DATABASE_URL: server.url,
      // One job at a time, so orders placed just before the outage are still pending during it.
      WORKER_CONCURRENCY: '1',
    }
    const { run: api, base } = await startServe(cleanup, env)
    const worker = await startCommand(cleanup, 'worker', { ...env, LOG_LEVEL: 'info' })
    cleanup.after(async () => {
      await terminate(api)
      await terminate(worker)
      await deleteRedisKeys(appName)
    })

    const token = await signIn(base)
    const itemId = await createItem(base, token, 1000)
    const orderBody = { item_id: itemId, quantity: 1 }
    const placed = await Promise.all(
      Array.from({ length: ORDERS_BEFORE }, () =>
        probe(`${base}/api/orders`, { method: 'POST', token, body: orderBody }),
      ),
    )
    const orderIds = placed.map((answer) => {
      assert.equal(answer.status, 202, answer.body)
      return (JSON.parse(answer.body) as { id: string }).id
    })

    // The outage, while orders wait in the queue.
    const counter = createDatabase(
      testConfig({ DATABASE_URL: server.url }),
      pino({ level: 'silent' }),
    )
    const pendingRow = await counter.db
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow()
    await counter.close()
    const pendingAtStop = Number(pendingRow.count)
    await server.stop()
    const stoppedAt = performance.now()
    const readyProbes: Probe[] = []
    const readyLoop = (async () => {
      while (performance.now() - stoppedAt < DOWN_MS) {
        const next = performance.now() + READY_PROBE_MS
        readyProbes.push(await probe(`${base}/ready`, {}, 5000))
        await sleep(Math.max(0, next - performance.now()))
      }
    })()
    const rounds: Round[] = []
    while (performance.now() - stoppedAt < DOWN_MS) {
      const [placeOrder, readOrder, createItemProbe] = await Promise.all([
        probe(`${base}/api/orders`, { method: 'POST', token, body: orderBody }),
        probe(`${base}/api/orders/${orderIds[0]}`, { token }),
        probe(`${base}/api/items`, {
          method: 'POST',
          token,
          body: { name: 'Lamp', price: 5, stock: 1 },
        }),
      ])
      rounds.push({ placeOrder, readOrder, createItem: createItemProbe })
      await sleep(200)
    }
    await readyLoop
    await server.start()
    const back = performance.now()

    // /ready comes back, then every order placed before the outage settles.
    let readyAgainMs = Number.POSITIVE_INFINITY
    while (performance.now() - back < 30_000) {
      if ((await probe(`${base}/ready`, {}, 2000)).status === 200) {
        readyAgainMs = performance.now() - back
        break
      }
      await sleep(100)
    }
    let pending = orderIds.length
    let settledMs = Number.POSITIVE_INFINITY
    while (performance.now() - back < SETTLE_TIMEOUT_MS) {
      const orders = await Promise.all(
        orderIds.map((id) => probe(`${base}/api/orders/${id}`, { token })),
      )
      pending = orders.filter(
        (p) => p.status !== 200 || (JSON.parse(p.body) as { status: string }).status === 'pending',
      ).length
      if (pending === 0) {
        settledMs = performance.now() - back
        break
      }
      await sleep(250)
    }

    const firstFailing = readyProbes.findIndex((p) => p.status === 503)
    const readyFailing = readyProbes.filter((p) => p.status === 503).length
    expectFigure(t, {
      item: 6,
      name: `${name}: /ready probes (every ${READY_PROBE_MS} ms) after the stop`,
      measured:
        firstFailing < 0
          ? `never 503 in ${readyProbes.length} probes (${readyProbes.map((p) => p.status).join(',')})`
          : `503 from probe ${firstFailing + 1}; ${readyFailing}/${readyProbes.length} probes 503`,
      pass: 'first 503 within two probes, 503 until the database returns',
      ok:
        firstFailing >= 0 && firstFailing < 2 && readyFailing === readyProbes.length - firstFailing,
    })

    const answers = rounds.flatMap((r) => [r.placeOrder, r.readOrder, r.createItem])
    const byStatus = new Map<number, number>()
    for (const answer of answers)
      byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1)
    const raw500 = answers.filter((p) => p.status >= 500 && p.status !== 503).length
    const unavailable = answers.filter((p) => p.status === 503)
    const codes = new Set(
      unavailable.map((p) => {
        try {
          return (JSON.parse(p.body) as { code?: string }).code ?? '?'
        } catch {
          return '?'
        }
      }),
    )
    const withRetryAfter = unavailable.filter((p) => p.headers?.get('retry-after')).length
    expectFigure(t, {
      item: 6,
      name: `${name}: requests during the outage (place order, read order, create item)`,
      measured: `${unavailable.length}/${answers.length} answered 503 (${[...codes].join(', ')}; ${withRetryAfter} with Retry-After), ${raw500} other 5xx; statuses ${[...byStatus].map(([status, count]) => `${status}×${count}`).join(' ')}; slowest ${Math.round(Math.max(...answers.map((p) => p.ms)))} ms`,
      pass: 'every request 503, never a raw 500',
      ok: unavailable.length === answers.length && raw500 === 0,
    })

    expectFigure(t, {
      item: 6,
      name: `${name}: ${ORDERS_BEFORE} orders placed just before the outage`,
      measured: Number.isFinite(settledMs)
        ? `${pendingAtStop} pending at the stop; all settled ${(settledMs / 1000).toFixed(2)} s after the database returned (/ready 200 after ${(readyAgainMs / 1000).toFixed(2)} s)`
        : `${pending}/${orderIds.length} still pending ${SETTLE_TIMEOUT_MS / 1000} s after it returned`,
      pass: 'all finish after the database returns',
      ok: pending === 0,
    })

    const crashes = [...crashLines(api.output()), ...crashLines(worker.output())]
    const alive = [api, worker].filter(
      (p) => p.child.exitCode === null && p.child.signalCode === null,
    )
    expectFigure(t, {
      item: 6,
      name: `${name}: API and worker processes through the outage`,
      measured: `${alive.length}/2 up, ${crashes.length} unhandled rejections or exceptions${crashes.length ? `: ${crashes[0]?.slice(0, 200)}` : ''}`,
      pass: '2/2 up, 0 unhandled',
      ok: alive.length === 2 && crashes.length === 0,
    })
  })
}
