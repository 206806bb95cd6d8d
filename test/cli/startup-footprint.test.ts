import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { scratchDir } from '../helpers/app.ts'
import { freePort, type RunningProcess, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, whenReachable } from '../helpers/services.ts'

const RECORDER = fileURLToPath(new URL('../helpers/loaded-packages.ts', import.meta.url))

/**
 * Drivers a process loads only when its configuration uses them (start-up time, memory), and
 * Node's bundled undici, which an ES import of node:http would load (50 ms of every start).
 */
const ON_DEMAND = ['ioredis', 'bullmq', 'mysql2', 'pg', 'undici', 'pino-pretty', 'node:undici']

/** Serves until the first 200 on /health, stops, and returns the packages the process loaded. */
async function packagesLoadedBy(
  t: { after(fn: () => void): void },
  env: Record<string, string>,
): Promise<string[]> {
  const port = await freePort()
  const run: RunningProcess = runCli(['serve'], {
    APP_ENV: 'test',
    GRPC_PORT: 'off',
    ...env,
    PORT: String(port),
    NODE_OPTIONS: `--import=${RECORDER}`,
  })
  t.after(stopOnExit(run))
  await waitForOk(`http://127.0.0.1:${port}/health`, 30_000)
  run.child.kill('SIGTERM')
  assert.equal(await run.exited, 0, run.output())
  const line = /^loaded packages: (.*)$/m.exec(run.output())?.[1]
  assert.ok(line !== undefined, `no package list in the output:\n${run.output()}`)
  return line.split(' ')
}

test("embedded serve loads none of the Redis, queue, server database, HTTP client or pretty-log drivers, nor Node's undici", async (t) => {
  const loaded = await packagesLoadedBy(t, {
    DATABASE_URL: `sqlite:${join(scratchDir(), 'footprint.db')}`,
  })
  // The recorder sees what is loaded: the server's own libraries are there.
  for (const name of ['fastify', 'kysely', 'pino']) assert.ok(loaded.includes(name), name)
  assert.deepEqual(
    ON_DEMAND.filter((name) => loaded.includes(name)),
    [],
  )
})

test('distributed serve on MariaDB loads ioredis, BullMQ and mysql2, and still not pg or either undici', async (t) => {
  for (const service of ['mysql', 'redis'] as const) {
    const { skip } = await whenReachable(service)
    if (skip) return t.skip(skip)
  }
  const loaded = await packagesLoadedBy(t, {
    DATABASE_URL: serviceUrls.mysql,
    REDIS_URL: serviceUrls.redis,
    APP_NAME: `footprint-${process.pid}`,
  })
  assert.deepEqual(
    ON_DEMAND.filter((name) => loaded.includes(name)),
    ['ioredis', 'bullmq', 'mysql2'],
  )
})
