import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { createDatabase } from '../../src/infra/db/index.ts'
import { testConfig } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { createItem, signIn, startCommand, uniqueAppName } from '../orders/order-helpers.ts'
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
import { cleanupStack, startPrivateRedis } from './private-servers.ts'

const PAUSED_MS = 5000
const DOWN_MS = 10_000
const ORDERS_BEFORE = 40
const TASKS_BEFORE = 20
/** "Fast": a 503 well inside a client's patience, not after the outage. */
const FAST_503_MS = 1000
const RECOVERY_MS = 5000

interface Round {
  enqueueTask: Probe
  enqueueOrder: Probe
  read: Probe
  ready: Probe
}

test('Redis paused, then shut down for 10 s: 503 fast, reads fall back, recovery, no job lost', {
  timeout: 240_000,
}, async (t) => {
  const cleanup = cleanupStack(t)
  const redis = await startPrivateRedis(cleanup)
  const databaseUrl = await createTestDatabase(cleanup, 'sqlite')
  const db = createDatabase(testConfig({ DATABASE_URL: databaseUrl }), pino({ level: 'silent' }))
  cleanup.after(() => db.close())
  const env = {
    ...PROCESS_ENV,
    APP_NAME: uniqueAppName('redis-outage'),
    REDIS_URL: redis.url,
    DATABASE_URL: databaseUrl,
    // One job at a time, so orders placed just before the outage are still queued during it.
    WORKER_CONCURRENCY: '1',
  }
  const { run: api, base } = await startServe(cleanup, env)
  const worker = await startCommand(cleanup, 'worker', { ...env, LOG_LEVEL: 'info' })
  cleanup.after(async () => {
    await terminate(api)
    await terminate(worker)
  })

  const token = await signIn(base)
  const itemId = await createItem(base, token, 1000)
  const itemUrl = `${base}/api/items/${itemId}`
  assert.equal((await probe(itemUrl)).status, 200) // cached from now on

  const round = async (): Promise<Round> => {
    const [enqueueTask, enqueueOrder, read, ready] = await Promise.all([
      probe(`${base}/api/tasks/number-sum`, { method: 'POST', token, body: { numbers: [1, 2] } }),
      probe(`${base}/api/orders`, {
        method: 'POST',
        token,
        body: { item_id: itemId, quantity: 1 },
      }),
      probe(itemUrl),
      probe(`${base}/ready`),
    ])
    return { enqueueTask, enqueueOrder, read, ready }
  }

  // Work in the queue when Redis goes: orders (one at a time) and tasks, submitted back to back.
  const orderIds: string[] = []
  const taskIds: string[] = []
  const submitted = await Promise.all([
    ...Array.from({ length: ORDERS_BEFORE }, () =>
      probe(`${base}/api/orders`, {
        method: 'POST',
        token,
        body: { item_id: itemId, quantity: 1 },
      }),
    ),
    ...Array.from({ length: TASKS_BEFORE }, (_, index) =>
      probe(`${base}/api/tasks/number-sum`, {
        method: 'POST',
        token,
        body: { numbers: [index, 1] },
      }),
    ),
  ])
  for (const answer of submitted) {
    assert.equal(answer.status, 202, answer.body)
    const body = JSON.parse(answer.body) as { id?: string; task_id?: string }
    if (body.id) orderIds.push(body.id)
    if (body.task_id) taskIds.push(body.task_id)
  }

  // The outage: paused (connections open, nothing answers), then shut down, then back.
  const during: Round[] = []
  const probeUntil = async (ms: number) => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      during.push(await round())
      await sleep(200)
    }
  }
  redis.pause()
  const pendingRow = await db.db
    .selectFrom('orders')
    .select((eb) => eb.fn.countAll().as('count'))
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow()
  const pendingAtOutage = Number(pendingRow.count)
  await probeUntil(PAUSED_MS)
  const pausedRounds = during.length
  await redis.stop()
  await probeUntil(DOWN_MS)
  await redis.start()
  const back = performance.now()

  // Recovery: the first moment every probe of a round answers as it should with Redis up.
  let recoveryMs = Number.POSITIVE_INFINITY
  let lastRound: Round | undefined
  while (performance.now() - back < 30_000) {
    lastRound = await round()
    const { enqueueTask, enqueueOrder, read, ready } = lastRound
    if (
      enqueueTask.status === 202 &&
      enqueueOrder.status === 202 &&
      read.status === 200 &&
      ready.status === 200
    ) {
      recoveryMs = performance.now() - back
      break
    }
    await sleep(100)
  }

  const enqueuesOf = (rounds: Round[]) => rounds.flatMap((r) => [r.enqueueTask, r.enqueueOrder])
  const slowest = (probes: Probe[]) => Math.round(Math.max(...probes.map((p) => p.ms)))
  const enqueues = enqueuesOf(during)
  const enqueue503 = enqueues.filter((p) => p.status === 503)
  const slowestEnqueue = slowest(enqueues)
  const otherEnqueue = enqueues.filter((p) => p.status !== 503).map((p) => p.status)
  const codes = new Set(
    enqueue503.map((p) => {
      try {
        return (JSON.parse(p.body) as { code?: string }).code ?? '?'
      } catch {
        return '?'
      }
    }),
  )
  expectFigure(t, {
    item: 5,
    name: 'enqueue (POST task, POST order) while Redis is paused or down',
    measured: `${enqueue503.length}/${enqueues.length} answered 503 (${[...codes].join(', ')}), slowest ${slowestEnqueue} ms (paused ${slowest(enqueuesOf(during.slice(0, pausedRounds)))} ms, down ${slowest(enqueuesOf(during.slice(pausedRounds)))} ms)${otherEnqueue.length ? `, others: ${[...new Set(otherEnqueue)].join(',')}` : ''}`,
    pass: `all 503, each < ${FAST_503_MS} ms`,
    ok: enqueue503.length === enqueues.length && slowestEnqueue < FAST_503_MS,
  })

  const reads = during.map((r) => r.read)
  const reads200 = reads.filter((p) => p.status === 200)
  expectFigure(t, {
    item: 5,
    name: 'reads (GET item) while Redis is paused or down, cache misses to the database',
    measured: `${reads200.length}/${reads.length} answered 200 (${Math.round((100 * reads200.length) / reads.length)}%), slowest ${Math.round(Math.max(...reads.map((p) => p.ms)))} ms`,
    pass: '100% 200',
    ok: reads200.length === reads.length,
  })

  const notReady = during.filter((r) => r.ready.status === 503).length
  expectFigure(t, {
    item: 5,
    name: '/ready while Redis is paused or down',
    measured: `${notReady}/${during.length} probes 503`,
    pass: 'every probe 503',
    ok: notReady === during.length,
  })

  expectFigure(t, {
    item: 5,
    name: 'recovery after Redis returns (enqueue 202, read 200, /ready 200)',
    measured: Number.isFinite(recoveryMs)
      ? `${(recoveryMs / 1000).toFixed(2)} s`
      : `not within 30 s (last: ${JSON.stringify(lastRound && Object.values(lastRound).map((p) => p.status))})`,
    pass: `< ${RECOVERY_MS / 1000} s`,
    ok: recoveryMs < RECOVERY_MS,
  })

  // No job lost: every order and task submitted before the outage finishes afterwards.
  let pendingOrders = orderIds.length
  let unfinishedTasks = taskIds.length
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const orders = await Promise.all(
      orderIds.map((id) => probe(`${base}/api/orders/${id}`, { token })),
    )
    pendingOrders = orders.filter(
      (p) => p.status !== 200 || (JSON.parse(p.body) as { status: string }).status === 'pending',
    ).length
    const tasks = await Promise.all(
      taskIds.map((id) => probe(`${base}/api/tasks/${id}`, { token })),
    )
    unfinishedTasks = tasks.filter(
      (p) => p.status !== 200 || (JSON.parse(p.body) as { state: string }).state !== 'succeeded',
    ).length
    if (pendingOrders === 0 && unfinishedTasks === 0) break
    await sleep(250)
  }
  expectFigure(t, {
    item: 5,
    name: `jobs submitted just before the outage (${ORDERS_BEFORE} orders, ${TASKS_BEFORE} tasks)`,
    measured: `${pendingAtOutage} orders still pending when Redis paused; afterwards ${orderIds.length - pendingOrders}/${orderIds.length} orders settled, ${taskIds.length - unfinishedTasks}/${taskIds.length} tasks succeeded`,
    pass: 'all finished, none lost',
    ok: pendingOrders === 0 && unfinishedTasks === 0,
  })

  const crashes = [...crashLines(api.output()), ...crashLines(worker.output())]
  const alive = [api, worker].filter(
    (p) => p.child.exitCode === null && p.child.signalCode === null,
  )
  expectFigure(t, {
    item: 5,
    name: 'API and worker processes through the outage',
    measured: `${alive.length}/2 up, ${crashes.length} unhandled rejections or exceptions`,
    pass: '2/2 up, 0 unhandled',
    ok: alive.length === 2 && crashes.length === 0,
  })
})
