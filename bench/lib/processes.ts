import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { request } from 'node:http'

/**
 * Every process the bench starts goes through here, so that whatever happens (an error, Ctrl-C,
 * SIGTERM) each one is stopped before the bench exits: SIGTERM first, SIGKILL after a grace.
 * Only processes started here are ever signalled, by their own pid.
 */
const running = new Set<ChildProcess>()

export interface Started {
  child: ChildProcess
  pid: number
  name: string
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>
}

export interface StartOptions {
  name: string
  command: string
  args: string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** `taskset -c <cpus>` in front of the command (the process keeps its own pid: taskset execs). */
  cpus?: string
  /**
   * A file for stderr (and stdout unless `isStdoutIgnored`), opened by the child itself: output
   * never flows through this process (it shares the load generator's core).
   */
  output?: string
  /** stdout to /dev/null (servekit's JSON logs also go to LOG_DIR files). */
  isStdoutIgnored?: boolean
  stdio?: SpawnOptions['stdio']
}

export function start(options: StartOptions): Started {
  const [command, args] = options.cpus
    ? ['taskset', ['-c', options.cpus, options.command, ...options.args]]
    : [options.command, options.args]
  const fd = options.output === undefined ? undefined : openSync(options.output, 'a')
  const stdio: SpawnOptions['stdio'] =
    options.stdio ??
    (fd === undefined ? 'ignore' : ['ignore', options.isStdoutIgnored ? 'ignore' : fd, fd])
  let child: ChildProcess
  try {
    child = spawn(command as string, args as string[], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio,
    })
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  running.add(child)
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve(code ?? signal ?? 'unknown')
    })
    child.once('error', (error) => {
      running.delete(child)
      resolve(`error: ${error.message}`)
    })
  })
  return {
    child,
    pid: child.pid ?? -1,
    name: options.name,
    exited,
    stop: (graceMs = 15_000) => stopChild(child, exited, graceMs),
  }
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<number | string>,
  graceMs: number,
): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return exited
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a command to its end; rejects on a non-zero exit with its output. */
export async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; cpus?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  const [cmd, argv] = options.cpus
    ? ['taskset', ['-c', options.cpus, command, ...args]]
    : [command, args]
  const child = spawn(cmd as string, argv as string[], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null]
    if (code !== 0) {
      throw new Error(
        `${command} ${args.join(' ')} failed (${code ?? signal}):\n${(stderr || stdout).slice(-2000)}`,
      )
    }
    return { stdout, stderr }
  } finally {
    clearTimeout(timer)
    running.delete(child)
  }
}

/** Stops everything still running (used on exit paths). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map((child) =>
      stopChild(
        child,
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? 0)
          else child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'))
        }),
        5000,
      ),
    ),
  )
}

/** Last resort on a synchronous exit: SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const child of running) child.kill('SIGKILL')
}

let handlersInstalled = false
/**
 * On SIGINT or SIGTERM: stops the started processes, then `onInterrupt` (temporary files), then
 * exits. On any exit, whatever is still running gets SIGKILL.
 */
export function installCleanup(onInterrupt?: () => void): void {
  if (handlersInstalled) return
  handlersInstalled = true
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}, stopping the processes it started…\n`)
    void stopAll().finally(() => {
      onInterrupt?.()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  process.once('exit', killAllNow)
}

/** GET `url` once; resolves with the status and body (no keep-alive). */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** Polls `url` until it answers 200; resolves with the milliseconds waited. */
export async function waitFor200(
  url: string,
  options: { timeoutMs?: number; intervalMs?: number; process?: Started } = {},
): Promise<number> {
  const { timeoutMs = 30_000, intervalMs = 50 } = options
  const startedAt = performance.now()
  for (;;) {
    if (options.process && options.process.child.exitCode !== null) {
      throw new Error(
        `${options.process.name} exited (${options.process.child.exitCode}) before answering`,
      )
    }
    try {
      const { status } = await httpGet(url, {}, 1000)
      if (status === 200) return performance.now() - startedAt
    } catch {
      // not listening yet
    }
    if (performance.now() - startedAt > timeoutMs) {
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** CPU time a process has used so far (user + system, all its threads), in microseconds. */
export async function cpuMicros(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_SECOND = 100

/** Resident memory of a process in bytes (VmRSS), or undefined once it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match ? Number(match[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; reports the peak. */
export function sampleRss(pid: number, intervalMs = 250): { stop(): Promise<number> } {
  let peak = 0
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const rss = await rssBytes(pid)
      if (rss !== undefined && rss > peak) peak = rss
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return peak
    },
  }
}
