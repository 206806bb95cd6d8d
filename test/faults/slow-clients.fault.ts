import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { stripVTControlCharacters } from 'node:util'
import { scratchDir } from '../helpers/app.ts'
import { round, type ServeProcess, startProber, startServe } from './auth-fault-helpers.ts'
import { expectFigure } from './figures.ts'

const HEADERS_TIMEOUT_MS = 8000
const REQUEST_TIMEOUT_MS = 10_000
/** Node checks both timeouts once a second (src/http/node-server.ts); plus 1 s for a busy machine. */
const SLACK_MS = 2000
const CONNECTIONS = 1000
/**
 * slowhttptest opens 250 connections a second: all 1,000 are open before the first is cut. At
 * 1,000 a second they would also all expire within one timeout check, and Node cuts every
 * expired socket in one synchronous pass (about 0.45 ms of CPU each for a slow body, Fastify
 * answering the aborted body too): a one-off stall of ~0.5 s on a quiet machine, over 1 s on
 * this shared one.
 */
const OPEN_PER_SECOND = 250

const hasSlowhttptest = spawnSync('slowhttptest', ['-h']).error === undefined
const skip = hasSlowhttptest
  ? false
  : 'slowhttptest is not installed (scripts/ensure-tools.sh installs it)'

interface Cut {
  /** ms from the first byte until the server ended the connection; undefined if it never did. */
  ms: number | undefined
  /** The status line of what the server answered, if anything. */
  status: string
}

/**
 * A raw socket that sends its request head (and body, when `contentLength` is set) a few bytes
 * every 500 ms and never finishes; resolves when the server ends the connection, or after 20 s.
 */
function slowSocket(port: number, kind: 'headers' | 'body'): Promise<Cut> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    let received = ''
    let started = 0
    let line = 0
    let ticker: NodeJS.Timeout | undefined
    const finish = (ms: number | undefined) => {
      clearInterval(ticker)
      clearTimeout(bound)
      socket.destroy()
      resolve({ ms, status: received.split('\r\n')[0] ?? '' })
    }
    const bound = setTimeout(() => finish(undefined), 20_000)
    socket.on('data', (chunk) => {
      received += chunk.toString()
    })
    socket.on('end', () => finish(performance.now() - started))
    socket.on('close', () => finish(performance.now() - started))
    socket.on('error', () => finish(performance.now() - started))
    socket.on('connect', () => {
      started = performance.now()
      socket.write(
        kind === 'headers'
          ? 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'
          : 'POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"username":"',
      )
      ticker = setInterval(() => {
        if (socket.writable)
          socket.write(kind === 'headers' ? `X-Slow-${line++}: still-coming\r\n` : 'a')
      }, 500)
    })
  })
}

/** Peak connections slowhttptest held open, from its CSV (seconds,closed,pending,connected,…). */
function peakConnected(csvFile: string): number {
  if (!existsSync(csvFile)) return 0
  const rows = readFileSync(csvFile, 'utf8').trim().split('\n').slice(1)
  return Math.max(0, ...rows.map((row) => Number(row.split(',')[3]) || 0))
}

async function attack(t: TestContext, server: ServeProcess, kind: 'headers' | 'body') {
  const args =
    kind === 'headers'
      ? ['-H', '-u', `${server.base}/health`]
      : ['-B', '-t', 'POST', '-s', '65536', '-u', `${server.base}/api/auth/login`]
  const prefix = join(scratchDir(), `slowhttptest-${kind}`)
  const tool = spawn(
    'slowhttptest',
    [
      ...args,
      ...[
        '-c',
        String(CONNECTIONS),
        '-r',
        String(OPEN_PER_SECOND),
        '-i',
        '1',
        '-x',
        '16',
        '-l',
        '20',
      ],
      ...['-g', '-o', prefix],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let toolOutput = ''
  tool.stdout.on('data', (chunk: Buffer) => {
    toolOutput += chunk.toString()
  })
  tool.stderr.on('data', (chunk: Buffer) => {
    toolOutput += chunk.toString()
  })
  const toolExited = once(tool, 'exit')
  const killer = setTimeout(() => tool.kill('SIGKILL'), 40_000)
  t.after(() => {
    clearTimeout(killer)
    if (tool.exitCode === null && tool.signalCode === null) tool.kill('SIGKILL')
  })

  const prober = startProber(`${server.base}/health`, 100)
  // Our own slow sockets, opened while slowhttptest's 1,000 are open.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const cuts = await Promise.all(Array.from({ length: 5 }, () => slowSocket(server.port, kind)))
  await toolExited
  clearTimeout(killer)
  const probes = await prober.stop()
  return { cuts, probes, toolOutput, peak: peakConnected(`${prefix}.csv`) }
}

for (const kind of ['headers', 'body'] as const) {
  const label = kind === 'headers' ? 'slowloris (slow headers)' : 'slow body'
  const timeoutMs = kind === 'headers' ? HEADERS_TIMEOUT_MS : REQUEST_TIMEOUT_MS
  const setting = kind === 'headers' ? 'HTTP_HEADERS_TIMEOUT_MS' : 'HTTP_REQUEST_TIMEOUT_MS'

  test(`${label}, ${CONNECTIONS} connections: the service stays available and cuts them in time`, {
    skip,
  }, async (t) => {
    const server = await startServe(t, {
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    })
    const { cuts, probes, toolOutput, peak: maxConnected } = await attack(t, server, kind)

    const slowest = Math.max(...probes.map((probe) => probe.ms))
    const bad = probes.filter((probe) => probe.status !== 200 || probe.ms >= 1000)
    expectFigure(t, {
      item: 8,
      name: `${label}, ${CONNECTIONS} connections (slowhttptest): /health probe every 100 ms`,
      measured: `${probes.length - bad.length}/${probes.length} probes 200 within 1 s, slowest ${round(slowest)} ms; slowhttptest held up to ${maxConnected} connections${
        bad.length
          ? `; failed: ${bad
              .slice(0, 3)
              .map(
                (probe) =>
                  `${probe.status} in ${round(probe.ms)} ms (connected after ${round(probe.connectMs ?? Number.NaN)} ms, sent at ${round((probe.at ?? 0) / 1000, 1)} s)${probe.error ? ` ${probe.error}` : ''}`,
              )
              .join(', ')}`
          : ''
      }`,
      pass: 'every probe 200 within 1 s',
      ok: bad.length === 0 && probes.length >= 30,
    })

    const bound = timeoutMs + SLACK_MS
    const times = cuts.map((cut) => cut.ms ?? Number.POSITIVE_INFINITY)
    const answered408 = cuts.filter((cut) => cut.status.startsWith('HTTP/1.1 408')).length
    expectFigure(t, {
      item: 8,
      name: `${label}: own slow sockets during the attack (${setting}=${timeoutMs})`,
      measured: `${answered408}/${cuts.length} answered 408; cut after ${round(Math.min(...times) / 1000, 2)}–${round(Math.max(...times) / 1000, 2)} s`,
      pass: `408 and closed within ${bound / 1000} s (${timeoutMs / 1000} s + 1 s check interval + 1 s)`,
      ok: answered408 === cuts.length && times.every((ms) => ms >= timeoutMs - 100 && ms <= bound),
    })
    assert.ok(
      maxConnected >= CONNECTIONS * 0.9,
      `slowhttptest held only ${maxConnected} connections at once: ${stripVTControlCharacters(toolOutput).slice(-600)}`,
    )
    // Still serving once the attack is over.
    assert.equal((await fetch(`${server.base}/health`)).status, 200)
  })
}
