import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, type RunningProcess, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { serviceUrls, useRedisPrefix } from '../helpers/services.ts'
import { type LogLine, sleep } from './ops-helpers.ts'

/** The direct children of a process (Linux). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

/** The JSON lines a process printed (other output skipped). */
export function jsonLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine]
      } catch {
        return []
      }
    })
}

/** Polls `check` every 50 ms until it is true; fails after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/**
 * Distributed mode on the test Redis under a key prefix of its own (APP_NAME), removed when the
 * test ends: more than one worker needs it, since embedded state is per process.
 */
export async function distributedEnv(t: TestContext): Promise<Record<string, string>> {
  const { prefix } = await useRedisPrefix(t)
  return { REDIS_URL: serviceUrls.redis, APP_NAME: prefix }
}

export interface RunningCluster {
  run: RunningProcess
  port: number
  base: string
  primaryPid: number
  /** The workers' pids as the primary reported them listening, latest last. */
  listeningPids(): number[]
}

/**
 * `serve --workers N` as a child process on a free port with an embedded database, waited for
 * until all N workers listen (the primary logs it at info level); killed when the test ends if
 * it is still running.
 */
export async function startCluster(
  t: TestContext,
  workers: number,
  env: Record<string, string> = {},
): Promise<RunningCluster> {
  const port = await freePort()
  const run = runCli(['serve', '--workers', String(workers)], {
    APP_ENV: 'test',
    DATABASE_URL: `sqlite:${join(scratchDir(), 'cluster.db')}`,
    PORT: String(port),
    RATE_LIMIT_PER_MINUTE: '100000000',
    // The suite loads 2 cores with other tests; a shed request here would be the machine's.
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  })
  t.after(stopOnExit(run))
  const base = `http://127.0.0.1:${port}`
  const listeningPids = () =>
    jsonLines(run.output())
      .filter((line) => line.msg === 'worker listening')
      .map((line) => Number(line.worker_pid))
  // A lone server (one worker) has no primary to report it; it is up when /health answers.
  if (workers > 1) {
    await waitUntil(
      `${workers} workers listening`,
      () => {
        if (run.child.exitCode !== null) throw new Error(`exited with ${run.child.exitCode}`)
        return listeningPids().length >= workers
      },
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; the process printed:\n${run.output()}`)
    })
  }
  await waitForOk(`${base}/health`, 60_000)
  return { run, port, base, primaryPid: run.child.pid as number, listeningPids }
}

export interface Answer {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/** One request on a connection of its own (no keep-alive), so the primary hands each out anew. */
export function freshRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString()
        })
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body, headers: response.headers }),
        )
        response.on('error', reject)
      },
    )
    outgoing.on('error', reject)
    outgoing.end(options.body)
  })
}
