import { join } from 'node:path'
import { scratchDir } from '../helpers/app.ts'
import { freePort, type RunningProcess, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'

/** One HTTP exchange of a probe: status (0 = no answer), time taken, body text. */
export interface Probe {
  status: number
  ms: number
  body: string
  headers: Headers | undefined
}

/** A request bounded by `timeoutMs` (status 0 if it failed or got no answer in time). */
export async function probe(
  url: string,
  init: { method?: string; token?: string; body?: unknown } = {},
  timeoutMs = 5000,
): Promise<Probe> {
  const started = performance.now()
  const headers: Record<string, string> = {}
  if (init.token) headers.authorization = `Bearer ${init.token}`
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  try {
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const body = await response.text()
    return {
      status: response.status,
      ms: performance.now() - started,
      body,
      headers: response.headers,
    }
  } catch (error) {
    return {
      status: 0,
      ms: performance.now() - started,
      body: (error as Error).message,
      headers: undefined,
    }
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What a process printed that shows it lost control: an unhandled rejection or exception. */
export function crashLines(output: string): string[] {
  return output
    .split('\n')
    .filter((line) =>
      /unhandledRejection|uncaughtException|Unhandled promise rejection|triggerUncaughtException/i.test(
        line,
      ),
    )
}

/** Settings of the processes under test: fast hashes, no limits or shedding in the way. */
export const PROCESS_ENV = {
  APP_ENV: 'test',
  BCRYPT_COST: '4',
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  RATE_LIMIT_PER_MINUTE: '100000000',
  RATE_LIMIT_USER_PER_MINUTE: '100000000',
  LOG_LEVEL: 'warn',
} as const

/** `node src/main.ts serve` on a free port; resolves once /health answers. */
export async function startServe(
  t: { after(fn: () => void | Promise<void>): void },
  env: Record<string, string>,
): Promise<{ run: RunningProcess; base: string }> {
  const port = await freePort()
  const run = runCli(['serve'], { ...PROCESS_ENV, HOST: '127.0.0.1', PORT: String(port), ...env })
  t.after(stopOnExit(run))
  const base = `http://127.0.0.1:${port}`
  try {
    await waitForOk(`${base}/health`, 60_000)
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${run.output()}`)
  }
  return { run, base }
}

/** A new SQLite file's URL in the test's scratch folder. */
export function sqliteUrl(name: string): string {
  return `sqlite:${join(scratchDir(), `${name}.db`)}`
}

/** SIGTERM and wait (bounded); SIGKILL if it does not exit. */
export async function terminate(run: RunningProcess, timeoutMs = 15_000): Promise<number | string> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.exited
  run.child.kill('SIGTERM')
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs)
  const code = await run.exited
  clearTimeout(timer)
  return code
}
