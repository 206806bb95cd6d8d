import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { Pool } from 'undici'
import { whenReachable } from '../helpers/services.ts'
import { distributedEnv, freshRequest, startCluster } from './cluster-helpers.ts'
import { sleep } from './ops-helpers.ts'

const CLIENTS = 50
const SHUTDOWN_DELAY_MS = 2000
const PROBE_TIMEOUT_MS = 500

/**
 * A request whose body arrives slowly, so it is still in flight when the server stops
 * accepting: resolves with the status line it finally gets (or the error).
 */
function slowLogin(port: number, finishAfter: Promise<void>): Promise<string> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ username: 'nobody-here', password: 'not the password' })
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString()
    })
    socket.on('error', (error) => resolve(`error: ${error.message}`))
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''))
    socket.write(
      `POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    )
    socket.write(body.slice(0, 5))
    void finishAfter.then(() => socket.write(body.slice(5)))
  })
}

// One worker runs embedded; two share state through Redis, so they run where it answers.
for (const workers of [2, 1]) {
  const needs = workers > 1 ? await whenReachable('redis') : { skip: false }
  test(`SIGTERM under load (${CLIENTS} keep-alive clients, --workers ${workers}): no request fails, exit 0`, {
    timeout: 90_000,
    ...needs,
  }, async (t) => {
    const cluster = await startCluster(t, workers, {
      ...(workers > 1 ? await distributedEnv(t) : {}),
      SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS),
      SHUTDOWN_GRACE_MS: '10000',
      BCRYPT_COST: '4',
      // This tests draining; on a saturated test machine load shedding would rightly answer 503
      // (it has its own test in hardening.test.ts).
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    })
    const pool = new Pool(cluster.base, { connections: CLIENTS, keepAliveTimeout: 30_000 })
    t.after(() => pool.destroy())

    // The load balancer: it sends traffic until its readiness probe fails (not 200, or no answer
    // within its timeout), as a Kubernetes Service or an ingress does once the endpoint is marked
    // not ready. It probes every 300 ms, so traffic goes on for a while after the signal, on
    // connections told to close; SHUTDOWN_DELAY_MS is what gives it time to notice.
    // (Before the signal a slow probe on a busy test machine is not held against the server.)
    let isRouting = true
    let isSignalled = false
    const balancer = (async () => {
      while (isRouting) {
        const ready = await Promise.race([
          freshRequest(`${cluster.base}/ready`).catch(() => undefined),
          sleep(PROBE_TIMEOUT_MS),
        ])
        if (ready?.status !== 200 && isSignalled) isRouting = false
        else await sleep(300)
      }
    })()

    let succeeded = 0
    const failures: string[] = []
    const paths = ['/health', '/api/items?page=1&limit=5', '/api/items/123456789']
    const client = async (index: number) => {
      for (let round = 0; isRouting; round++) {
        const path = paths[(index + round) % paths.length] as string
        try {
          const { statusCode, body } = await pool.request({ method: 'GET', path })
          await body.text()
          const expected = path === '/api/items/123456789' ? 404 : 200
          if (statusCode === expected) succeeded += 1
          else failures.push(`${path}: ${statusCode}`)
        } catch (error) {
          failures.push(`${path}: ${(error as Error).message}`)
        }
      }
    }
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)))

    await sleep(1200)
    const finishUploads = Promise.withResolvers<void>()
    const slow = [1, 2, 3].map(() => slowLogin(cluster.port, finishUploads.promise))
    await sleep(300)
    const before = succeeded
    const signalledAt = Date.now()
    cluster.run.child.kill('SIGTERM')
    isSignalled = true
    // The uploads end after the pause, while the server is closing: they were in flight.
    setTimeout(() => finishUploads.resolve(), SHUTDOWN_DELAY_MS + 400)

    const exitCode = await cluster.run.exited
    const exitedAfterMs = Date.now() - signalledAt
    await load
    await balancer

    t.diagnostic(
      `${succeeded} requests served (${succeeded - before} after SIGTERM), ${failures.length} failed; exit ${exitCode} after ${exitedAfterMs} ms`,
    )
    assert.deepEqual(failures, [], `failed requests (of ${succeeded + failures.length})`)
    assert.ok(before > 100, `the load ran before the signal (${before} requests)`)
    assert.ok(succeeded > before, 'requests were served after the signal, while draining')
    assert.deepEqual(await Promise.all(slow), Array(3).fill('HTTP/1.1 401 Unauthorized'))
    const systemLines = cluster.run
      .output()
      .split('\n')
      .filter((line) => !line.includes('"logger":"access"'))
    assert.equal(exitCode, 0, systemLines.join('\n'))
    assert.ok(exitedAfterMs < SHUTDOWN_DELAY_MS + 5000, `exit took ${exitedAfterMs} ms`)
  })
}
