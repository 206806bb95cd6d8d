import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { get as httpGet, type IncomingMessage } from 'node:http'
import { test } from 'node:test'
import { createTestDatabase } from '../../../test/helpers/db.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../../../test/helpers/process.ts'

const ITEMS = 100_000
const MAX_GROWTH_MB = 50

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

/** VmHWM (peak resident set) and VmRSS of a process, in MB, from /proc. */
async function memoryOf(pid: number): Promise<{ peakMb: number; rssMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])
  return { peakMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 }
}

test(`exporting ${ITEMS.toLocaleString('en')} items grows the server's peak RSS by less than ${MAX_GROWTH_MB} MB`, {
  skip: process.platform === 'linux' ? false : 'reads /proc, which only Linux has',
  timeout: 180_000,
}, async (t) => {
  const databaseUrl = await createTestDatabase(t, 'sqlite')
  const env = { APP_ENV: 'test', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...NO_SHEDDING }
  const seeding = runCli(['seed', '--count', String(ITEMS)], env)
  t.after(stopOnExit(seeding))
  assert.equal(await seeding.exited, 0, seeding.output())

  const port = await freePort()
  const server = runCli(['serve'], { ...env, PORT: String(port) })
  t.after(stopOnExit(server))
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForOk(`${baseUrl}/health`, 20_000)
  const pid = server.child.pid
  assert.ok(pid)
  // Warm up the ordinary paths, so the baseline is a server that has served requests.
  for (let page = 1; page <= 5; page++) await fetch(`${baseUrl}/api/items?page=${page}&limit=100`)

  const before = await memoryOf(pid)
  let maxRssMb = before.rssMb
  const sampler = setInterval(() => {
    memoryOf(pid).then(
      ({ rssMb }) => {
        maxRssMb = Math.max(maxRssMb, rssMb)
      },
      () => undefined,
    )
  }, 25)

  const startedMs = performance.now()
  const { lines, bytes } = await download(`${baseUrl}/api/items/export.csv`)
  const tookMs = performance.now() - startedMs
  const after = await memoryOf(pid)
  // A second export shows the cost does not add up: memory is reused, not held.
  const second = await download(`${baseUrl}/api/items/export.csv`)
  clearInterval(sampler)
  const afterSecond = await memoryOf(pid)
  maxRssMb = Math.max(maxRssMb, after.rssMb, afterSecond.rssMb)
  assert.equal(second.lines, lines)

  assert.equal(lines, ITEMS + 1, 'the header and every item')
  const growthMb = after.peakMb - before.peakMb
  t.diagnostic(
    `export of ${ITEMS} items: ${(bytes / 1024 / 1024).toFixed(1)} MB of CSV in ${Math.round(tookMs)} ms; ` +
      `peak RSS ${before.peakMb.toFixed(1)} -> ${after.peakMb.toFixed(1)} MB (growth ${growthMb.toFixed(1)} MB), ` +
      `RSS ${before.rssMb.toFixed(1)} MB before, at most ${maxRssMb.toFixed(1)} MB while streaming; ` +
      `a second export moved the peak by ${(afterSecond.peakMb - after.peakMb).toFixed(1)} MB`,
  )
  assert.ok(growthMb < MAX_GROWTH_MB, `peak RSS grew by ${growthMb.toFixed(1)} MB`)

  server.child.kill('SIGTERM')
  assert.equal(await server.exited, 0, server.output())
})

/** Downloads `url` on a connection of its own, counting bytes and lines without keeping them. */
async function download(url: string): Promise<{ lines: number; bytes: number }> {
  const request = httpGet(url, { agent: false })
  const [response] = (await once(request, 'response')) as [IncomingMessage]
  assert.equal(response.statusCode, 200)
  let lines = 0
  let bytes = 0
  for await (const chunk of response as AsyncIterable<Buffer>) {
    bytes += chunk.length
    for (const byte of chunk) if (byte === 0x0a) lines += 1
  }
  return { lines, bytes }
}
