import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from './processes.ts'

/** One load run's figures, whatever generated the load. */
export interface RunResult {
  requests: number
  seconds: number
  rps: number
  /** Latency percentiles in milliseconds. */
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx answers. */
  errors: number
  non2xx: number
  /** The server's CPU time (all its threads) per request, in microseconds: steadier than
   * requests per second on a busy machine, since time other processes take is not counted. */
  cpuUsPerRequest?: number
  detail?: Record<string, number>
}

/** Prints the figures as one JSON line wrk's summary cannot get wrong (units, rounding). */
const DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`

/** Cycles through pre-built requests for random paths read from a file (one path a line). */
const RANDOM_PATHS = `
local requests = {}
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then requests[#requests + 1] = wrk.format(nil, line) end
  end
  math.randomseed(os.time())
end
function request()
  return requests[math.random(#requests)]
end
`

const scripts = mkdtempSync(join(tmpdir(), 'servekit-bench-wrk-'))
export function removeWrkScripts(): void {
  rmSync(scripts, { recursive: true, force: true })
}

function script(name: string, body: string): string {
  const path = join(scripts, `${name}.lua`)
  writeFileSync(path, `${body}\n${DONE}`)
  return path
}

export interface WrkLoad {
  /** Base URL: http://127.0.0.1:8000 */
  baseUrl: string
  /** A fixed path, or `pathsFile` for random paths. */
  path?: string
  pathsFile?: string
  method?: 'GET' | 'POST'
  body?: string
  headers?: Record<string, string>
  connections: number
  seconds: number
  /** Pinning of wrk itself. */
  cpus: string
}

export async function wrk(load: WrkLoad): Promise<RunResult> {
  let lua: string
  if (load.pathsFile) {
    lua = script('random-paths', RANDOM_PATHS)
  } else if (load.method === 'POST') {
    lua = script(
      `post-${Date.now()}`,
      `wrk.method = "POST"\nwrk.body = ${JSON.stringify(load.body ?? '')}\n`,
    )
  } else {
    lua = script('plain', '')
  }
  const args = ['-t1', `-c${load.connections}`, `-d${load.seconds}s`, '--timeout', '5s', '-s', lua]
  for (const [name, value] of Object.entries(load.headers ?? {}))
    args.push('-H', `${name}: ${value}`)
  args.push(`${load.baseUrl}${load.path ?? '/'}`)
  if (load.pathsFile) args.push('--', load.pathsFile)
  const { stdout } = await run('wrk', args, {
    cpus: load.cpus,
    timeoutMs: (load.seconds + 30) * 1000,
  })
  const line = stdout.split('\n').find((text) => text.startsWith('WRK_JSON '))
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`)
  const raw = JSON.parse(line.slice('WRK_JSON '.length)) as Record<string, number>
  const seconds = (raw.duration_us ?? 0) / 1e6
  const requests = raw.requests ?? 0
  const socketErrors = (raw.connect ?? 0) + (raw.read ?? 0) + (raw.write ?? 0) + (raw.timeout ?? 0)
  return {
    requests,
    seconds,
    rps: seconds > 0 ? requests / seconds : 0,
    p50Ms: (raw.p50 ?? 0) / 1000,
    p90Ms: (raw.p90 ?? 0) / 1000,
    p99Ms: (raw.p99 ?? 0) / 1000,
    maxMs: (raw.max ?? 0) / 1000,
    errors: socketErrors + (raw.status ?? 0),
    non2xx: raw.status ?? 0,
    detail: {
      connect: raw.connect ?? 0,
      read: raw.read ?? 0,
      write: raw.write ?? 0,
      timeout: raw.timeout ?? 0,
    },
  }
}
