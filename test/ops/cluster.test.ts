import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { restartDelayMs } from '../../src/commands/cluster.ts'
import { workerCount } from '../../src/commands/serve.ts'
import { createLoggers } from '../../src/infra/logger/index.ts'
import { parseSnowflake } from '../../src/shared/ids/index.ts'
import { scratchDir, testConfig } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit } from '../helpers/process.ts'
import { whenReachable } from '../helpers/services.ts'
import {
  childrenOf,
  distributedEnv,
  freshRequest,
  jsonLines,
  startCluster,
  waitUntil,
} from './cluster-helpers.ts'
import { captureLines, which } from './ops-helpers.ts'

// More than one worker needs Redis (embedded state is per process): these run where it answers.
const CLUSTER = { timeout: 90_000, ...(await whenReachable('redis')) }

test(
  'serve --workers 2: two worker processes answer, each with its own snowflake worker id, and /metrics sums both',
  CLUSTER,
  async (t) => {
    const cluster = await startCluster(t, 2, {
      ...(await distributedEnv(t)),
      WORKER_ID: '10',
      BCRYPT_COST: '4',
    })
    const workers = childrenOf(cluster.primaryPid)
    assert.equal(workers.length, 2, 'the primary runs two workers')
    assert.deepEqual(new Set(cluster.listeningPids()), new Set(workers))

    // Each request on a new connection: the primary hands connections to the workers in turn.
    const requests = 40
    for (let i = 0; i < requests; i++) {
      const answer = await freshRequest(`${cluster.base}/health`, {
        headers: { 'x-request-id': `cluster-probe-${i}` },
      })
      assert.equal(answer.status, 200)
    }
    // Rows made by different workers carry different worker ids: no snowflake can collide.
    const madeBy = new Set<number>()
    for (let i = 0; i < 6; i++) {
      const answer = await freshRequest(`${cluster.base}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: `worker-probe-${i}`, password: 'correct horse' }),
      })
      assert.equal(answer.status, 201, answer.body)
      madeBy.add(parseSnowflake((JSON.parse(answer.body) as { id: string }).id).workerId)
    }
    assert.deepEqual([...madeBy].sort(), [11, 12], 'WORKER_ID 10 + slots 1 and 2')

    const metrics = await freshRequest(`${cluster.base}/metrics`)
    assert.equal(metrics.status, 200)
    const healthCount = metrics.body.match(
      /^http_request_duration_seconds_count\{method="GET",route="\/health",status_code="200"\} (\d+)$/m,
    )
    assert.ok(
      Number(healthCount?.[1]) >= requests,
      `the sum over both workers: ${healthCount?.[0]}`,
    )
    const promtool = which('promtool')
    if (promtool) {
      const check = spawnSync(promtool, ['check', 'metrics'], {
        input: metrics.body,
        encoding: 'utf8',
      })
      assert.equal(
        check.status,
        0,
        `promtool on the aggregated metrics: ${check.stdout}${check.stderr}`,
      )
    }

    cluster.run.child.kill('SIGTERM')
    assert.equal(await cluster.run.exited, 0, cluster.run.output())
    const lines = jsonLines(cluster.run.output())
    const servedBy = new Set(
      lines
        .filter(
          (line) => line.logger === 'access' && String(line.req_id).startsWith('cluster-probe-'),
        )
        .map((line) => line.pid),
    )
    assert.deepEqual(
      [...servedBy].sort(),
      [...workers].sort(),
      'the access lines name both worker pids',
    )
    const listening = lines.filter((line) => line.msg === 'worker listening')
    assert.deepEqual(listening.map((line) => line.worker_id).sort(), [11, 12])
  },
)

test(
  'a killed worker is replaced by the primary while the other keeps serving',
  CLUSTER,
  async (t) => {
    const cluster = await startCluster(t, 2, await distributedEnv(t))
    const [victim, survivor] = childrenOf(cluster.primaryPid) as [number, number]
    process.kill(victim, 'SIGKILL')
    const noticed = () =>
      jsonLines(cluster.run.output()).find((line) => line.msg === 'worker died: restarting it')
    // A connection the primary hands out in the instant before it notices the death is lost with
    // the worker (a node:cluster limitation, see the README); from then on none is.
    await waitUntil('the primary noticing the death', () => noticed() !== undefined)

    // While the replacement starts, every new connection is served by the surviving worker.
    for (let i = 0; i < 20; i++) {
      assert.equal((await freshRequest(`${cluster.base}/health`)).status, 200)
    }
    await waitUntil('a replacement worker', () => {
      const now = childrenOf(cluster.primaryPid)
      return now.length === 2 && !now.includes(victim) && now.includes(survivor)
    })
    const replacement = childrenOf(cluster.primaryPid).find((pid) => pid !== survivor) as number
    await waitUntil('the replacement listening', () =>
      cluster.listeningPids().includes(replacement),
    )
    const died = noticed()
    assert.ok(died, cluster.run.output())
    assert.equal(died.worker_pid, victim)
    assert.equal(died.status, 'SIGKILL')
    assert.equal(died.restartInMs, 0, 'the first crash is restarted at once')

    // The replacement takes its share of new connections.
    const answered = new Set<unknown>()
    for (let i = 0; i < 20; i++) {
      const answer = await freshRequest(`${cluster.base}/health`, {
        headers: { 'x-request-id': `after-restart-${i}` },
      })
      assert.equal(answer.status, 200)
    }
    cluster.run.child.kill('SIGTERM')
    assert.equal(await cluster.run.exited, 0, cluster.run.output())
    for (const line of jsonLines(cluster.run.output())) {
      if (String(line.req_id).startsWith('after-restart-')) answered.add(line.pid)
    }
    assert.ok(answered.has(replacement), 'the replacement served requests')
  },
)

test('a restart loop backs off: at once, then 0.5 s doubling up to 30 s', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(restartDelayMs),
    [0, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  )
})

test('workers: --workers, else WEB_WORKERS, else one per core in prod with Redis, else 1', () => {
  const redis = 'redis://127.0.0.1:6379/0'
  const cores = workerCount({ APP_ENV: 'prod', REDIS_URL: redis })
  assert.ok(cores >= 1)
  assert.equal(workerCount({ APP_ENV: 'prod' }), 1, 'embedded prod: one process')
  assert.equal(workerCount({ APP_ENV: 'local', REDIS_URL: redis }), 1)
  assert.equal(workerCount({ APP_ENV: 'local' }), 1)
  assert.equal(workerCount({ APP_ENV: 'local', WEB_WORKERS: 3 }), 3)
  assert.equal(workerCount({ APP_ENV: 'local', WEB_WORKERS: 3 }, 2), 2)
  assert.equal(workerCount({ APP_ENV: 'local' }, 0), cores)
  assert.equal(workerCount({ APP_ENV: 'prod', WEB_WORKERS: 1 }), 1)
})

test('workers that cannot start (port taken) fail the start: exit 1', CLUSTER, async (t) => {
  const port = await freePort()
  const blocker = createServer()
  blocker.listen(port, '127.0.0.1')
  await once(blocker, 'listening')
  t.after(() => blocker.close())
  const run = runCli(['serve', '--workers', '2'], {
    ...(await distributedEnv(t)),
    APP_ENV: 'test',
    DATABASE_URL: `sqlite:${join(scratchDir(), 'taken.db')}`,
    PORT: String(port),
  })
  t.after(stopOnExit(run))
  assert.equal(await run.exited, 1, run.output())
  assert.match(run.output(), /worker failed to start/)
})

test('--workers must be 0 to 256; more than one needs REDIS_URL; WORKER_ID + workers ≤ 1023', async () => {
  const bad = runCli(['serve', '--workers', 'many'], { APP_ENV: 'test' })
  assert.equal(await bad.exited, 2)
  assert.match(bad.output(), /--workers="many" is invalid/)
  const embedded = runCli(['serve', '--workers', '2'], { APP_ENV: 'test' })
  assert.equal(await embedded.exited, 2)
  assert.match(embedded.output(), /^config error: 2 workers need REDIS_URL: /m)
  const tooHigh = runCli(['serve', '--workers', '4'], {
    APP_ENV: 'test',
    WORKER_ID: '1022',
    REDIS_URL: 'redis://127.0.0.1:1/0',
  })
  assert.equal(await tooHigh.exited, 2)
  assert.match(tooHigh.output(), /config error: WORKER_ID=1022 is invalid with 4 workers/)
})

// Keeps the helper honest: a waitUntil that never holds fails with its description.
test('waitUntil names what it waited for', async () => {
  await assert.rejects(
    waitUntil('the impossible', () => false, 100),
    /the impossible/,
  )
})

test('with LOG_DIR, each worker of a cluster writes and rotates files of its own', async () => {
  const dir = scratchDir()
  const config = testConfig({ LOG_LEVEL: 'info', LOG_DIR: dir, CLUSTER_WORKER_SLOT: '2' })
  const { stream } = captureLines()
  const loggers = createLoggers(config, stream)
  loggers.access.info({ status: 200 }, 'served')
  await loggers.close()
  assert.match(readFileSync(join(dir, 'servekit-access-w2.log'), 'utf8'), /"status":200/)
})
