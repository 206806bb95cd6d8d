import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { AppError } from '../../shared/errors.ts'
import { createCpuPool } from './cpu-pool.ts'
import { countPrimes, hashChain } from './cpu-tasks.ts'

test('the tasks compute the right answers (checked on the main thread)', () => {
  assert.equal(countPrimes({ limit: 100 }), 25)
  assert.equal(countPrimes({ limit: 1_000_000 }), 78_498)
  assert.equal(countPrimes({ limit: 1 }), 0)
  assert.equal(countPrimes({ limit: 2 }), 1)
  assert.equal(
    hashChain({ seed: 'abc', rounds: 1 }),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  )
  assert.throws(() => countPrimes({ limit: -1 }), RangeError)
  assert.throws(() => hashChain({ seed: 'x', rounds: 1.5 }), RangeError)
})

test('the pool runs the .ts task module on worker threads and returns results', async (t) => {
  const pool = createCpuPool({ maxThreads: 2 })
  t.after(() => pool.close())
  const [primes, digest] = await Promise.all([
    pool.run('countPrimes', { limit: 1_000_000 }),
    pool.run('hashChain', { seed: 'abc', rounds: 1 }),
  ])
  assert.equal(primes, 78_498)
  assert.equal(digest, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  assert.ok(pool.stats().threads >= 1)
  await assert.rejects(pool.run('countPrimes', { limit: -5 }), RangeError)
})

test('an aborted task stops, and a full queue answers CPU_POOL_BUSY', async (t) => {
  const pool = createCpuPool({ maxThreads: 1, maxQueue: 1 })
  t.after(() => pool.close())
  const controller = new AbortController()
  const running = pool.run(
    'hashChain',
    { seed: 's', rounds: 20_000_000 },
    { signal: controller.signal },
  )
  const queued = pool.run('hashChain', { seed: 'q', rounds: 1 })
  await assert.rejects(pool.run('hashChain', { seed: 'r', rounds: 1 }), (error: unknown) => {
    assert.ok(error instanceof AppError)
    assert.equal(error.kind, 'unavailable')
    assert.equal(error.code, 'CPU_POOL_BUSY')
    return true
  })
  const started = performance.now()
  controller.abort()
  await assert.rejects(running, { name: 'AbortError' })
  assert.equal((await queued).length, 64)
  assert.ok(performance.now() - started < 5000, 'the abort did not wait for 20M rounds')
})

test('while 4 heavy tasks run on the pool, /health on the main thread keeps p99 < 20 ms', async (t) => {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  const client = new Pool(`http://127.0.0.1:${address.port}`, { connections: 1 })
  // As many threads as tasks, more than the cores: the worst case for the event loop.
  const pool = createCpuPool({ maxThreads: 4 })
  t.after(async () => {
    await pool.close()
    await client.close()
    server.close()
  })

  // One round: four heavy tasks on the pool while /health is probed; its p99 and what ran.
  async function measureRound() {
    let isWorking = true
    const started = performance.now()
    const work = Promise.all(
      [1, 2, 3, 4].map((index) =>
        pool.run('hashChain', { seed: `task-${index}`, rounds: 400_000 }),
      ),
    ).finally(() => {
      isWorking = false
    })
    const latenciesMs: number[] = []
    let busiestThreads = 0
    while (isWorking || latenciesMs.length < 200) {
      const sent = performance.now()
      const response = await client.request({ path: '/health', method: 'GET' })
      await response.body.text()
      latenciesMs.push(performance.now() - sent)
      busiestThreads = Math.max(busiestThreads, pool.stats().threads)
      // Paced like a prober, so the measuring loop does not itself starve the workers.
      await sleep(1)
    }
    const digests = await work
    const workMs = performance.now() - started
    latenciesMs.sort((a, b) => a - b)
    const at = (share: number) =>
      latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(share * latenciesMs.length))] ?? 0
    t.diagnostic(
      `/health during ${workMs.toFixed(0)} ms of CPU work: ${latenciesMs.length} requests, ` +
        `p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, max ${at(1).toFixed(2)} ms`,
    )
    return { p99: at(0.99), digests, busiestThreads }
  }

  // Other processes on a shared machine can only add latency, never remove it: the best of up
  // to three rounds measures this process.
  let best = await measureRound()
  for (let round = 1; round < 3 && best.p99 >= 20; round++) {
    const next = await measureRound()
    if (next.p99 < best.p99) best = next
  }
  const { p99, digests, busiestThreads } = best
  assert.equal(digests.length, 4)
  assert.equal(busiestThreads, 4, 'the four tasks ran at once on four worker threads')
  assert.ok(p99 < 20, `/health p99 was ${p99.toFixed(2)} ms`)
})
