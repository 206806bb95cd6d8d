import { createHmac, createSign, type KeyObject } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, type RunningProcess, runCli, waitForOk } from '../helpers/process.ts'

/** A `node src/main.ts serve` process of the fault suite. */
export interface ServeProcess {
  port: number
  /** http://127.0.0.1:<port> */
  base: string
  running: RunningProcess
}

/**
 * Starts a real serve process on a free port with `env` over quiet test defaults (a fresh SQLite
 * file, no load shedding, loose rate limits: each test turns on what it measures), waits for
 * /health, and stops it (SIGTERM, then SIGKILL) when the test ends.
 */
export async function startServe(
  t: TestContext,
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const port = await freePort()
  const running = runCli(['serve'], {
    APP_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: `sqlite:${join(scratchDir(), 'faults.db')}`,
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    RATE_LIMIT_PER_MINUTE: '1000000',
    RATE_LIMIT_USER_PER_MINUTE: '1000000',
    RATE_LIMIT_ROUTES: 'POST /api/auth/login=1000000,POST /api/auth/register=1000000',
    ...env,
    PORT: String(port),
  })
  t.after(() => stopServe(running))
  const base = `http://127.0.0.1:${port}`
  try {
    await waitForOk(`${base}/health`, 30_000)
  } catch (error) {
    throw new Error(`serve did not start: ${(error as Error).message}\n${running.output()}`)
  }
  return { port, base, running }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
export async function stopServe(running: RunningProcess): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return
  running.child.kill('SIGTERM')
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 10_000)
  await running.exited
  clearTimeout(timer)
}

/** POST JSON, bounded by `timeoutMs`. */
export async function postJson(url: string, body: unknown, timeoutMs = 30_000): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
}

/** Registers `username` and logs in; resolves to the access token. */
export async function registerAndLogin(
  base: string,
  username: string,
  password: string,
): Promise<string> {
  const registered = await postJson(`${base}/api/auth/register`, { username, password })
  if (registered.status !== 201)
    throw new Error(`register answered ${registered.status}: ${await registered.text()}`)
  const login = await postJson(`${base}/api/auth/login`, { username, password })
  if (login.status !== 200) throw new Error(`login answered ${login.status}: ${await login.text()}`)
  return ((await login.json()) as { access_token: string }).access_token
}

export interface Probe {
  status: number
  /** Until the whole answer was in. */
  ms: number
  /** Until the TCP connection was established. */
  connectMs?: number
  error?: string
  /** When it started, in ms since the prober started. */
  at?: number
}

/** One GET on a new connection (no keep-alive pool): status and milliseconds, or the error. */
export function probeOnce(url: string, timeoutMs = 5000): Promise<Probe> {
  const started = performance.now()
  let connectMs: number | undefined
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume()
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, connectMs }),
      )
      res.on('error', (error) =>
        resolve({ status: 0, ms: performance.now() - started, connectMs, error: error.message }),
      )
    })
    req.on('socket', (socket) =>
      socket.once('connect', () => {
        connectMs = performance.now() - started
      }),
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (error) =>
      resolve({ status: 0, ms: performance.now() - started, error: error.message }),
    )
    req.end()
  })
}

/**
 * Probes `url` every `everyMs` until `stop()` is called; each probe is a fresh connection.
 * `stop()` resolves to every result once the probes in flight have settled.
 */
export function startProber(url: string, everyMs = 100) {
  const pending: Promise<Probe>[] = []
  const started = performance.now()
  const timer = setInterval(() => {
    const at = performance.now() - started
    pending.push(probeOnce(url).then((probe) => ({ ...probe, at })))
  }, everyMs)
  return {
    async stop() {
      clearInterval(timer)
      return Promise.all(pending)
    },
  }
}

/** The value of an unlabelled Prometheus sample `name` in `text` (NaN when absent). */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((row) => row.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1))
}

export const round = (value: number, digits = 1) => Number(value.toFixed(digits))

// --- JWT forging -------------------------------------------------------------------------------

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url')
const json64 = (value: unknown) => b64url(JSON.stringify(value))

/** The decoded header and payload of a compact JWT (no checks). */
export function decodeJwt(token: string): {
  header: Record<string, unknown>
  payload: Record<string, unknown>
} {
  const [header, payload] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()),
  }
}

/** A JWT with an empty signature (for alg none). */
export function unsignedJwt(header: object, payload: object): string {
  return `${json64(header)}.${json64(payload)}.`
}

/** An HS256 JWT signed with `key` (a secret, or the bytes of a public key PEM). */
export function hs256Jwt(header: object, payload: object, key: string | Buffer): string {
  const input = `${json64(header)}.${json64(payload)}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

/** An RS256 JWT signed with `privateKey`. */
export function rs256Jwt(header: object, payload: object, privateKey: KeyObject | string): string {
  const input = `${json64(header)}.${json64(payload)}`
  const signature = createSign('RSA-SHA256').update(input).sign(privateKey)
  return `${input}.${b64url(signature)}`
}
