/**
 * `npm run bench`: servekit (distributed mode: MariaDB + Redis, production settings) against the
 * FastAPI peer, side by side on the same machine, plus the other measurements of issue 10.
 * See the README's "Performance" section; results go to bench/results/latest.{json,md}.
 *
 * Knobs (environment): BENCH_SECONDS (8, per run), BENCH_ROUNDS (3: A B A B A B), BENCH_CONNECTIONS
 * (64), BENCH_WS_IDLE (10000), BENCH_PROFILE (1: a CPU profile of servekit per workload; 0: off),
 * BENCH_SERVER_CPUS ("0"), BENCH_LOAD_CPUS ("1"), PEER_DIR (../shared/peer/fastapi), PYTHON
 * (/usr/bin/python3), BENCH_MYSQL_HOST/PORT, BENCH_REDIS_URL; BENCH_SERVEKIT_ROOT runs servekit from
 * another checkout (a "before" copy) and BENCH_NAME names the reports (default latest).
 */
import { createHmac, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { createHistogram } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { type HotFunction, inclusiveMatching, summarizeCpuProfile } from './cpuprofile-summary.ts'
import {
  deleteRedisKeys,
  ensureDatabases,
  ensurePackages,
  type MysqlTarget,
  query,
  reachable,
  recreateDatabase,
} from './lib/prepare.ts'
import {
  cpuMicros,
  installCleanup,
  rssBytes,
  run,
  type Started,
  sampleRss,
  start,
  stopAll,
  waitFor200,
} from './lib/processes.ts'
import {
  atLeast,
  atMost,
  fmt,
  type SystemName,
  summarize,
  type Target,
  targetTable,
  type WorkloadResult,
  workloadTable,
} from './lib/report.ts'
import { type RunResult, removeWrkScripts, type WrkLoad, wrk } from './lib/wrk.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** The servekit checkout under test: this one unless BENCH_SERVEKIT_ROOT says another. */
const SERVEKIT_ROOT = resolve(process.env.BENCH_SERVEKIT_ROOT ?? ROOT)
const MAIN = join(SERVEKIT_ROOT, 'src/main.ts')
const NAME = process.env.BENCH_NAME ?? 'latest'
const RESULTS = join(ROOT, 'bench/results')
const env = process.env
const SECONDS = Number(env.BENCH_SECONDS ?? 8)
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 64)
const WS_CONNECTIONS = 64
const WS_IDLE = Number(env.BENCH_WS_IDLE ?? 10_000)
const WARM_SECONDS = 3
const IS_PROFILING = (env.BENCH_PROFILE ?? '1') !== '0'
const SERVER_CPUS = env.BENCH_SERVER_CPUS ?? '0'
const LOAD_CPUS = env.BENCH_LOAD_CPUS ?? '1'
const PEER_DIR = resolve(env.PEER_DIR ?? join(ROOT, '../shared/peer/fastapi'))
const PYTHON = env.PYTHON ?? '/usr/bin/python3'
const LOGINS = 50
/** BENCH_ONLY=item,post: just these workloads, without the other measurements (for quick A/B). */
const ONLY = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',')) : undefined
const ITEM_ROWS = 10_000
const PAGES = ITEM_ROWS / 20

const MYSQL: MysqlTarget = {
  host: env.BENCH_MYSQL_HOST ?? '127.0.0.1',
  port: Number(env.BENCH_MYSQL_PORT ?? 3306),
  user: 'bench',
  password: 'bench',
}
const PEER_DB = 'bench'
const SERVEKIT_DB = 'servekit_bench'
const REDIS_URL = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0'
const SERVEKIT_PREFIX = 'servekit-bench'
const PEER_PREFIX = 'peer-bench'
const SERVEKIT_SECRET = randomBytes(32).toString('hex')
const PEER_SECRET = 'bench-secret-bench-secret-bench-secret'
const HUGE_LIMIT = '100000000'

const startedAt = Date.now()
const work = mkdtempSync(join(tmpdir(), 'servekit-bench-'))
const say = (line: string) => process.stdout.write(`[${elapsed()}] ${line}\n`)
const elapsed = () => {
  const seconds = Math.round((Date.now() - startedAt) / 1000)
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`
}

/** A wrk load without its target. */
type HttpLoad = Omit<WrkLoad, 'baseUrl' | 'seconds'>

interface System {
  name: SystemName
  baseUrl: string
  process: Started
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  installCleanup(() => {
    removeWrkScripts()
    rmSync(work, { recursive: true, force: true })
  })
  // The orchestrator itself stays off the servers' core.
  await run('taskset', ['-a', '-p', '-c', LOAD_CPUS, String(process.pid)]).catch(() => undefined)

  say(
    `servekit bench: ${SECONDS}s per run, ${ROUNDS} interleaved rounds (A B A B …), ${CONNECTIONS} connections`,
  )
  await ensurePackages(PYTHON, say)
  if (!existsSync(join(PEER_DIR, 'app.py')))
    throw new Error(`the peer is not at ${PEER_DIR} (set PEER_DIR)`)
  const redisUrl = new URL(REDIS_URL)
  for (const [what, host, port] of [
    ['MariaDB', MYSQL.host, MYSQL.port],
    ['Redis', redisUrl.hostname, Number(redisUrl.port || 6379)],
  ] as const) {
    if (!(await reachable(host, port))) {
      throw new Error(
        `${what} is not reachable on ${host}:${port}; start it (see ${PEER_DIR}/README.md, "Services")`,
      )
    }
  }

  // --- data: the same 10,000 items and the same index on both sides --------------------------
  say('preparing MariaDB: databases, the peer seed, servekit migrations and seed')
  await ensureDatabases(MYSQL, [PEER_DB, SERVEKIT_DB], say)
  const mysqlUrl = `${MYSQL.user}:${MYSQL.password}@${MYSQL.host}:${MYSQL.port}`
  await run(PYTHON, ['seed.py'], {
    cwd: PEER_DIR,
    env: {
      ...env,
      MYSQL_URL: `mysql+aiomysql://${mysqlUrl}/${PEER_DB}`,
      SEED_ROWS: String(ITEM_ROWS),
    },
    timeoutMs: 120_000,
  })
  await recreateDatabase(MYSQL, SERVEKIT_DB)
  const servekitEnv = servekitEnvironment(`mysql://${mysqlUrl}/${SERVEKIT_DB}`)
  await run(process.execPath, [MAIN, 'migrate', 'up'], {
    env: servekitEnv,
    cwd: SERVEKIT_ROOT,
    timeoutMs: 60_000,
  })
  await run(process.execPath, [MAIN, 'seed', '--count', String(ITEM_ROWS)], {
    env: servekitEnv,
    cwd: SERVEKIT_ROOT,
    timeoutMs: 120_000,
  })
  const indexes = {
    peer: await indexColumns(PEER_DB),
    servekit: await indexColumns(SERVEKIT_DB),
  }
  say(
    `items indexes: peer ${JSON.stringify(indexes.peer)}, servekit ${JSON.stringify(indexes.servekit)}`,
  )
  await deleteRedisKeys(REDIS_URL, [SERVEKIT_PREFIX, PEER_PREFIX])

  // --- the servers, one worker each, on the server core ------------------------------------------
  const ports = { servekit: 18_101, peer: 18_102, bare: 18_103, fastify: 18_104 }
  // A start finds the modules the one before compiled in NODE_COMPILE_CACHE (the image sets it;
  // a restarted pod keeps it): one start first fills it, so the figures are of a usual start.
  await (await startServekit(servekitEnv, ports.servekit, 'servekit-prime')).process.stop()
  for (const [name, script] of FLOORS)
    await (await startFloor(name, script, ports[name])).process.stop()
  const servekit = await startServekit(servekitEnv, ports.servekit, 'servekit')
  const peer = await startPeer(ports.peer)
  const bare = await startFloor('bare', FLOORS[0][1], ports.bare)
  const fastify = await startFloor('fastify', FLOORS[1][1], ports.fastify)
  const systems = { servekit, peer, bare, fastify }

  // --- what the workloads need: tokens, ids, warm caches ----------------------------------------
  const servekitToken = await servekitLogin(
    servekit.baseUrl,
    'bench-user',
    'bench-password-1',
    true,
  )
  const peerToken = mintHs256(
    { sub: '1', exp: Math.floor(Date.now() / 1000) + 3 * 3600 },
    PEER_SECRET,
  )
  const servekitIds = (
    await query<{ id: string }>(MYSQL, SERVEKIT_DB, 'SELECT id FROM items WHERE deleted_at IS NULL')
  ).map((row) => String(row.id))
  const itemPaths = {
    servekit: writeLines(
      'items-servekit.txt',
      servekitIds.map((id) => `/api/items/${id}`),
    ),
    peer: writeLines(
      'items-peer.txt',
      Array.from({ length: ITEM_ROWS }, (_, index) => `/api/items/${index + 1}`),
    ),
  }
  const listPaths = writeLines(
    'pages.txt',
    Array.from({ length: PAGES }, (_, index) => `/api/items?page=${index + 1}&limit=20`),
  )
  await sleep(2000)
  const idle = {
    servekitRssBytes: await rssBytes(servekit.process.pid),
    peerRssBytes: await rssBytes(peer.process.pid),
    bareRssBytes: await rssBytes(bare.process.pid),
  }
  say(
    `idle RSS: servekit ${mb(idle.servekitRssBytes)} MB, peer ${mb(idle.peerRssBytes)} MB, bare node:http ${mb(idle.bareRssBytes)} MB`,
  )

  // --- HTTP workloads, interleaved ----------------------------------------------------------------
  const rssPeaks: Record<string, number> = {}
  /** One measured run, with the server's RSS peak and its CPU time per request. */
  const runOne = async (system: System, load: () => Promise<RunResult>): Promise<RunResult> => {
    const sampler = sampleRss(system.process.pid)
    const cpuBefore = await cpuMicros(system.process.pid)
    try {
      const result = await load()
      const cpuAfter = await cpuMicros(system.process.pid)
      if (cpuBefore !== undefined && cpuAfter !== undefined && result.requests > 0) {
        result.cpuUsPerRequest = (cpuAfter - cpuBefore) / result.requests
      }
      return result
    } finally {
      const peak = await sampler.stop()
      rssPeaks[system.name] = Math.max(rssPeaks[system.name] ?? 0, peak)
    }
  }
  const http = (
    base: Pick<WrkLoad, 'path' | 'pathsFile' | 'method' | 'body'>,
    headers?: Record<string, string>,
  ): HttpLoad => ({ ...base, headers, connections: CONNECTIONS, cpus: LOAD_CPUS })

  const itemBody = JSON.stringify({
    name: 'bench item',
    price: 9.5,
    description: 'made by wrk',
    stock: 3,
  })
  const workloads: Array<{
    name: string
    title: string
    systems: SystemName[]
    load: (system: SystemName) => HttpLoad
  }> = [
    {
      name: 'health',
      title: 'GET /health',
      systems: ['servekit', 'peer', 'bare', 'fastify'],
      load: () => http({ path: '/health' }),
    },
    {
      name: 'item',
      title: 'GET /api/items/{id} (cache hit)',
      systems: ['servekit', 'peer'],
      load: (name) =>
        http({ pathsFile: name === 'servekit' ? itemPaths.servekit : itemPaths.peer }),
    },
    {
      name: 'list',
      title: 'GET /api/items?page=N&limit=20',
      systems: ['servekit', 'peer'],
      load: () => http({ pathsFile: listPaths }),
    },
    {
      name: 'post',
      title: 'POST /api/items (bearer)',
      systems: ['servekit', 'peer'],
      load: (name) =>
        http(
          { path: '/api/items', method: 'POST', body: itemBody },
          {
            authorization: `Bearer ${name === 'servekit' ? servekitToken : peerToken}`,
            'content-type': 'application/json',
          },
        ),
    },
  ]

  const results: WorkloadResult[] = []
  for (const workload of workloads.filter((candidate) => !ONLY || ONLY.has(candidate.name))) {
    const result: WorkloadResult = {
      name: workload.name,
      title: workload.title,
      systems: workload.systems,
      runs: {},
      summary: {},
    }
    if (workload.name === 'item') {
      // Cache hits: every id read once on each side first (the peer's TTL, 300 s, outlasts the
      // workload; servekit's is set to an hour).
      const warmStarted = performance.now()
      await warmPaths(servekit.baseUrl, readLines(itemPaths.servekit))
      const servekitWarmMs = performance.now() - warmStarted
      await warmPaths(peer.baseUrl, readLines(itemPaths.peer))
      say(
        `item caches warmed (every id once): servekit ${(servekitWarmMs / 1000).toFixed(1)} s, peer ${((performance.now() - warmStarted - servekitWarmMs) / 1000).toFixed(1)} s`,
      )
    }
    for (const name of workload.systems) {
      const system = systems[name]
      await wrk({ ...workload.load(name), baseUrl: system.baseUrl, seconds: WARM_SECONDS })
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const name of workload.systems) {
        const system = systems[name]
        const outcome = await runOne(system, () =>
          wrk({ ...workload.load(name), baseUrl: system.baseUrl, seconds: SECONDS }),
        )
        addRun(result, name, outcome)
        say(
          `${workload.name.padEnd(7)} round ${round} ${name.padEnd(8)} ${fmt(outcome.rps).padStart(7)} req/s  p50 ${outcome.p50Ms.toFixed(2)} ms  p99 ${outcome.p99Ms.toFixed(2)} ms  errors ${outcome.errors}`,
        )
      }
    }
    finishWorkload(result)
    results.push(result)
  }

  // --- WebSocket echo ---------------------------------------------------------------------------
  if (!ONLY || ONLY.has('ws-echo')) results.push(await websocketEcho(servekit, peer, runOne))
  if (ONLY) {
    // A quick A/B: the table only, and the reports are left alone.
    process.stdout.write(`\n${workloadTable(results)}\n\n`)
    say(`servekit RSS peak under load ${mb(rssPeaks.servekit)} MB`)
    return
  }

  // --- event-loop delay while 50 logins (bcrypt cost 12) run --------------------------------------
  const loopDelay = await loginLoopDelay(servekit.baseUrl)
  say(
    `loop delay during ${LOGINS} logins: p99 ${loopDelay.metricsP99Ms?.toFixed(1)} ms (/metrics), probe /health p99 ${loopDelay.probeP99Ms.toFixed(1)} ms, logins took ${loopDelay.loginsMs.toFixed(0)} ms`,
  )

  await sleep(3000)
  const idleAfterLoadRss = await rssBytes(servekit.process.pid)

  await Promise.all(Object.values(systems).map((system) => system.process.stop()))

  // --- 10,000 idle WebSockets, on a servekit process of their own -------------------------------
  const idleSockets = await idleWebSockets(servekitEnv)

  // --- start to first 200 in embedded mode --------------------------------------------------------
  const startup = await embeddedStartup()
  say(
    `embedded start to first 200: cold ${startup.coldMs.toFixed(0)} ms, warm median ${startup.warmMedianMs.toFixed(0)} ms`,
  )

  // --- CPU profiles of servekit under each workload -----------------------------------------------
  const profiles = IS_PROFILING ? await profileWorkloads(servekitEnv, workloads) : []

  await deleteRedisKeys(REDIS_URL, [SERVEKIT_PREFIX, PEER_PREFIX]).catch(() => 0)

  // --- report --------------------------------------------------------------------------------------
  const byName = Object.fromEntries(results.map((result) => [result.name, result]))
  const measures = {
    idleRssMb: mbNumber(idle.servekitRssBytes),
    peerIdleRssMb: mbNumber(idle.peerRssBytes),
    bareIdleRssMb: mbNumber(idle.bareRssBytes),
    idleAfterLoadRssMb: mbNumber(idleAfterLoadRss),
    loadRssPeakMb: mbNumber(rssPeaks.servekit),
    peerLoadRssPeakMb: mbNumber(rssPeaks.peer),
    idleWebSockets: idleSockets,
    startup,
    loopDelay,
  }
  const targets = evaluateTargets(byName, measures)
  const durationSeconds = Math.round((Date.now() - startedAt) / 1000)
  const report = {
    generatedAt: new Date().toISOString(),
    durationSeconds,
    settings: {
      secondsPerRun: SECONDS,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      wsConnections: WS_CONNECTIONS,
      serverCpus: SERVER_CPUS,
      loadCpus: LOAD_CPUS,
      loadGenerator: 'wrk -t1 (HTTP), Node WebSocket client (bench/ws-load.ts)',
    },
    machine: await machine(),
    indexes,
    workloads: results,
    measures,
    targets,
    profiles,
  }
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(join(RESULTS, `${NAME}.json`), `${JSON.stringify(report, null, 2)}\n`)
  const markdown = renderMarkdown(report)
  writeFileSync(join(RESULTS, `${NAME}.md`), markdown)
  process.stdout.write(`\n${workloadTable(results)}\n\n${targetTable(targets)}\n\n`)
  say(`wrote bench/results/${NAME}.json and ${NAME}.md (${durationSeconds} s)`)
}

// ---------------------------------------------------------------------------------------------

function servekitEnvironment(databaseUrl: string): NodeJS.ProcessEnv {
  return {
    PATH: env.PATH,
    HOME: env.HOME,
    APP_ENV: 'prod',
    APP_NAME: SERVEKIT_PREFIX,
    JWT_SECRET: SERVEKIT_SECRET,
    WEB_WORKERS: '1',
    HOST: '127.0.0.1',
    // The gRPC endpoint stays on, on a free port (its default, 50051, may be taken).
    GRPC_PORT: '0',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    // Production logging: JSON lines, the access log included, written to rotated files.
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    LOG_DIR: join(work, 'logs'),
    // As the image sets it (deploy/Dockerfile).
    NODE_COMPILE_CACHE: join(work, 'compile-cache'),
    METRICS_ENABLED: 'true',
    // Rate limits stay on (each request is counted in Redis) with limits the bench cannot reach.
    RATE_LIMIT_PER_MINUTE: HUGE_LIMIT,
    RATE_LIMIT_USER_PER_MINUTE: HUGE_LIMIT,
    RATE_LIMIT_ROUTES: `POST /api/auth/login=${HUGE_LIMIT},POST /api/auth/register=${HUGE_LIMIT}`,
    // The run lasts longer than the default 300 s: cache hits must stay hits.
    CACHE_TTL_SECONDS: '3600',
    BCRYPT_COST: '12',
  }
}

/** `sh -c 'ulimit -n …; exec "$@"'`: many sockets need many descriptors (the pid stays the same). */
function withFileLimit(command: string, args: string[]): { command: string; args: string[] } {
  return {
    command: 'sh',
    args: [
      '-c',
      'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      'sh',
      'taskset',
      '-c',
      SERVER_CPUS,
      command,
      ...args,
    ],
  }
}

async function startServekit(
  environment: NodeJS.ProcessEnv,
  port: number,
  name: string,
  nodeFlags: string[] = [],
): Promise<System> {
  const wrapped = withFileLimit(process.execPath, [...nodeFlags, MAIN, 'serve'])
  const started = start({
    name,
    ...wrapped,
    env: { ...environment, PORT: String(port) },
    cwd: SERVEKIT_ROOT,
    output: join(work, `${name}.out`),
    isStdoutIgnored: true,
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitFor200(`${baseUrl}/health`, { process: started, timeoutMs: 30_000 }).catch((error) => {
    throw new Error(`${(error as Error).message}\n${tail(join(work, `${name}.out`))}`)
  })
  return { name: 'servekit', baseUrl, process: started }
}

async function startPeer(port: number): Promise<System> {
  const wrapped = withFileLimit(join(PEER_DIR, 'run.sh'), [])
  const started = start({
    name: 'peer',
    ...wrapped,
    cwd: PEER_DIR,
    env: {
      PATH: env.PATH,
      HOME: env.HOME,
      PYTHON,
      WORKERS: '1',
      PORT: String(port),
      MYSQL_URL: `mysql+aiomysql://${MYSQL.user}:${MYSQL.password}@${MYSQL.host}:${MYSQL.port}/${PEER_DB}`,
      REDIS_URL,
      APP_NAME: PEER_PREFIX,
      JWT_SECRET: PEER_SECRET,
    },
    output: join(work, 'peer.out'),
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitFor200(`${baseUrl}/health`, { process: started, timeoutMs: 30_000 }).catch((error) => {
    throw new Error(`${(error as Error).message}\n${tail(join(work, 'peer.out'))}`)
  })
  return { name: 'peer', baseUrl, process: started }
}

/** The /health floors: the bare node:http server (the ceiling of the issue) and plain Fastify. */
/** The floors servekit is held against: a bare node:http server and a minimal Fastify app. */
const FLOORS = [
  ['bare', 'bench/bare-server.ts'],
  ['fastify', 'bench/fastify-server.ts'],
] as const

async function startFloor(name: 'bare' | 'fastify', script: string, port: number): Promise<System> {
  const started = start({
    name,
    command: process.execPath,
    args: [join(ROOT, script), String(port)],
    env: { ...env, NODE_COMPILE_CACHE: join(work, 'compile-cache') },
    cpus: SERVER_CPUS,
    output: join(work, `${name}.out`),
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitFor200(`${baseUrl}/health`, { process: started })
  return { name, baseUrl, process: started }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return ''
  }
}

// --- HTTP helpers ------------------------------------------------------------------------------

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 })

function call(
  url: string,
  options: { method?: string; body?: string; headers?: Record<string, string>; agent?: Agent } = {},
): Promise<{ status: number; body: string; ms: number }> {
  const began = performance.now()
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: options.agent ?? keepAlive,
        headers: {
          ...(options.body ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        timeout: 30_000,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () =>
          resolvePromise({ status: res.statusCode ?? 0, body, ms: performance.now() - began }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

async function servekitLogin(
  baseUrl: string,
  username: string,
  password: string,
  isRegistering: boolean,
): Promise<string> {
  if (isRegistering) {
    const registered = await call(`${baseUrl}/api/auth/register`, {
      method: 'POST',
      body: JSON.stringify({ username, password }),
    })
    if (registered.status !== 201 && registered.status !== 409) {
      throw new Error(`register answered ${registered.status}: ${registered.body}`)
    }
  }
  const login = await call(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    body: JSON.stringify({ username, password }),
  })
  if (login.status !== 200) throw new Error(`login answered ${login.status}: ${login.body}`)
  return (JSON.parse(login.body) as { access_token: string }).access_token
}

/** A compact HS256 JWT, as PyJWT would make it (the peer verifies sub and exp). */
function mintHs256(claims: Record<string, unknown>, secret: string): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`
}

async function warmPaths(baseUrl: string, paths: string[], concurrency = 64): Promise<void> {
  let next = 0
  let failures = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < paths.length) {
        const path = paths[next++] as string
        const { status } = await call(`${baseUrl}${path}`)
        if (status !== 200) failures += 1
      }
    }),
  )
  if (failures > 0)
    throw new Error(`${failures} of ${paths.length} warm-up requests to ${baseUrl} failed`)
}

function writeLines(name: string, lines: string[]): string {
  const path = join(work, name)
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean)
}

async function indexColumns(database: string): Promise<string[]> {
  const rows = await query<{ Key_name: string; Column_name: string; Seq_in_index: number }>(
    MYSQL,
    database,
    'SHOW INDEX FROM items',
  )
  const byKey = new Map<string, string[]>()
  for (const row of rows) {
    if (row.Key_name === 'PRIMARY') continue
    const columns = byKey.get(row.Key_name) ?? []
    columns[Number(row.Seq_in_index) - 1] = row.Column_name
    byKey.set(row.Key_name, columns)
  }
  return [...byKey.values()].map((columns) => `(${columns.join(', ')})`)
}

function addRun(result: WorkloadResult, name: SystemName, run: RunResult): void {
  const runs = result.runs[name] ?? []
  runs.push(run)
  result.runs[name] = runs
}

function finishWorkload(result: WorkloadResult): void {
  for (const name of result.systems) {
    const runs = result.runs[name]
    if (runs && runs.length > 0) result.summary[name] = summarize(runs)
  }
  const { servekit, peer, bare } = result.summary
  if (servekit && peer) {
    result.rpsRatio = servekit.rps / peer.rps
    result.p99Ratio = servekit.p99Ms / peer.p99Ms
  }
  if (servekit && bare) result.bareRatio = servekit.rps / bare.rps
  if (servekit?.cpuUsPerRequest && peer?.cpuUsPerRequest) {
    result.cpuRatio = peer.cpuUsPerRequest / servekit.cpuUsPerRequest
  }
}

// --- WebSockets ----------------------------------------------------------------------------------

async function websocketWorks(url: string): Promise<boolean> {
  try {
    await run(process.execPath, [join(ROOT, 'bench/ws-load.ts'), 'echo', url, '1', '0.2'], {
      timeoutMs: 10_000,
    })
    return true
  } catch {
    return false
  }
}

async function wsEcho(url: string, seconds: number): Promise<RunResult> {
  const { stdout } = await run(
    process.execPath,
    [join(ROOT, 'bench/ws-load.ts'), 'echo', url, String(WS_CONNECTIONS), String(seconds)],
    { cpus: LOAD_CPUS, timeoutMs: (seconds + 30) * 1000 },
  )
  return JSON.parse(stdout.trim().split('\n').pop() as string) as RunResult
}

async function websocketEcho(
  servekit: System,
  peer: System,
  runOne: (system: System, load: () => Promise<RunResult>) => Promise<RunResult>,
): Promise<WorkloadResult> {
  const result: WorkloadResult = {
    name: 'ws-echo',
    title: 'WebSocket echo round trips',
    systems: ['servekit', 'peer'],
    runs: {},
    summary: {},
    note: `${WS_CONNECTIONS} connections, each sends a 50-byte text message and waits for its echo`,
  }
  const wsUrl = (system: System) => `${system.baseUrl.replace('http:', 'ws:')}/ws/echo`
  if (!(await websocketWorks(wsUrl(servekit)))) {
    result.skipped = 'servekit has no /ws/echo yet'
    say('ws-echo skipped: servekit has no working /ws/echo')
    return result
  }
  if (!(await websocketWorks(wsUrl(peer)))) {
    result.skipped = 'the peer /ws/echo did not answer'
    return result
  }
  for (const system of [servekit, peer]) await wsEcho(wsUrl(system), WARM_SECONDS)
  for (let round = 1; round <= ROUNDS; round++) {
    for (const system of [servekit, peer]) {
      const outcome = await runOne(system, () => wsEcho(wsUrl(system), SECONDS))
      addRun(result, system.name, outcome)
      say(
        `ws-echo round ${round} ${system.name.padEnd(8)} ${fmt(outcome.rps).padStart(7)} msg/s  p50 ${outcome.p50Ms.toFixed(2)} ms  p99 ${outcome.p99Ms.toFixed(2)} ms  errors ${outcome.errors}`,
      )
    }
  }
  finishWorkload(result)
  return result
}

async function idleWebSockets(servekitEnv: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  // A fresh process: the RSS measured is the sockets' cost on top of an idle server, not on top
  // of a heap the HTTP workloads have grown.
  const servekit = await startServekit(servekitEnv, 18_130, 'servekit-ws-idle')
  try {
    return await holdIdleWebSockets(servekit)
  } finally {
    await servekit.process.stop()
  }
}

async function holdIdleWebSockets(servekit: System): Promise<Record<string, unknown>> {
  const url = `${servekit.baseUrl.replace('http:', 'ws:')}/ws/echo`
  if (!(await websocketWorks(url))) return { skipped: 'servekit has no /ws/echo yet' }
  await sleep(2000)
  const before = await rssBytes(servekit.process.pid)
  say(`opening ${WS_IDLE} idle WebSockets to servekit`)
  const client = start({
    name: 'ws-idle',
    command: 'sh',
    args: [
      '-c',
      'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      'sh',
      'taskset',
      '-c',
      LOAD_CPUS,
      process.execPath,
      join(ROOT, 'bench/ws-load.ts'),
      'idle',
      url,
      String(WS_IDLE),
    ],
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  client.child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  client.child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const openedAt = performance.now()
  const deadline = openedAt + 120_000
  while (!/READY \d+ \d+/.test(output)) {
    if (performance.now() > deadline || client.child.exitCode !== null) {
      await client.stop()
      return { error: `the idle client did not get ready: ${output.slice(-500)}` }
    }
    await sleep(200)
  }
  const [, open, failed] = /READY (\d+) (\d+)/.exec(output) as unknown as [string, string, string]
  const openMs = performance.now() - openedAt
  await sleep(3000)
  const withSockets = await rssBytes(servekit.process.pid)
  client.child.stdin?.end()
  await client.exited
  say(
    `${open} idle WebSockets open (${failed} failed): servekit RSS ${mb(withSockets)} MB (was ${mb(before)} MB)`,
  )
  return {
    requested: WS_IDLE,
    open: Number(open),
    failed: Number(failed),
    secondsToOpen: Math.round(openMs / 100) / 10,
    rssBeforeMb: mbNumber(before),
    rssMb: mbNumber(withSockets),
    bytesPerSocket:
      withSockets && before
        ? Math.round((withSockets - before) / Math.max(1, Number(open)))
        : undefined,
  }
}

// --- event-loop delay during logins -------------------------------------------------------------

async function loginLoopDelay(baseUrl: string): Promise<{
  logins: number
  loginsOk: number
  loginsMs: number
  loginP50Ms: number
  loginP99Ms: number
  metricsP99Ms: number | undefined
  metricsMaxMs: number | undefined
  idleP99Ms: number | undefined
  probeP99Ms: number
  probeMaxMs: number
  probes: number
  source: string
}> {
  const username = 'bench-login'
  const password = 'bench-password-2'
  await servekitLogin(baseUrl, username, password, true)
  // The idle figure first: the histogram samples every 10 ms and records whole intervals, so
  // an idle loop reads about 10 ms; the delay proper is what exceeds that.
  await call(`${baseUrl}/metrics`) // resets the event-loop delay histogram (read at each scrape)
  await sleep(3000)
  const idleMetrics = (await call(`${baseUrl}/metrics`)).body
  const probe = createHistogram()
  let probing = true
  let probes = 0
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  const prober = (async () => {
    while (probing) {
      const { ms } = await call(`${baseUrl}/health`, { agent: probeAgent })
      probe.record(Math.max(1, Math.round(ms * 1000)))
      probes += 1
      await sleep(5)
    }
  })()
  const began = performance.now()
  const loginAgent = new Agent({ keepAlive: true, maxSockets: LOGINS })
  const answers = await Promise.all(
    Array.from({ length: LOGINS }, () =>
      call(`${baseUrl}/api/auth/login`, {
        method: 'POST',
        body: JSON.stringify({ username, password }),
        agent: loginAgent,
      }),
    ),
  )
  const loginsMs = performance.now() - began
  probing = false
  await prober
  const metrics = (await call(`${baseUrl}/metrics`)).body
  const gauge = (name: string, text = metrics) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text)
    return match ? Number(match[1]) * 1000 : undefined
  }
  const latencies = answers.map((answer) => answer.ms).sort((a, b) => a - b)
  probeAgent.destroy()
  loginAgent.destroy()
  return {
    logins: LOGINS,
    loginsOk: answers.filter((answer) => answer.status === 200).length,
    loginsMs,
    loginP50Ms: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
    loginP99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0,
    metricsP99Ms: gauge('nodejs_eventloop_lag_p99_seconds'),
    idleP99Ms: gauge('nodejs_eventloop_lag_p99_seconds', idleMetrics),
    metricsMaxMs: gauge('nodejs_eventloop_lag_max_seconds'),
    probeP99Ms: probe.percentile(99) / 1000,
    probeMaxMs: probe.max / 1000,
    probes,
    source:
      "servekit's /metrics nodejs_eventloop_lag_p99_seconds (prom-client's monitorEventLoopDelay at 10 ms resolution, reset by each scrape: one scrape just before the logins, one just after). It records whole sampling intervals, so an idle loop reads about 10 ms (idleP99Ms, measured over 3 s before): the target is judged on the raw figure. The probe is a GET /health every 5 ms on one keep-alive connection, its round-trip latency",
  }
}

// --- embedded start-up ---------------------------------------------------------------------------

async function embeddedStartup(): Promise<{
  coldMs: number
  warmMs: number[]
  warmMedianMs: number
  note: string
}> {
  const directory = join(work, 'embedded')
  mkdirSync(directory, { recursive: true })
  const once = async (): Promise<number> => {
    const port = 18_110
    const began = performance.now()
    const started = start({
      name: 'servekit-embedded',
      command: process.execPath,
      args: [MAIN, 'serve'],
      cpus: SERVER_CPUS,
      cwd: SERVEKIT_ROOT,
      env: {
        PATH: env.PATH,
        HOME: env.HOME,
        APP_ENV: 'prod',
        APP_NAME: 'servekit-bench-embedded',
        JWT_SECRET: SERVEKIT_SECRET,
        WEB_WORKERS: '1',
        HOST: '127.0.0.1',
        GRPC_PORT: '0',
        PORT: String(port),
        DATABASE_URL: `sqlite:${join(directory, 'servekit.db')}`,
        LOG_FORMAT: 'json',
        // As the image sets it (deploy/Dockerfile): empty for the cold start, filled by it.
        NODE_COMPILE_CACHE: join(directory, 'compile-cache'),
      },
      output: join(work, 'embedded.out'),
      isStdoutIgnored: true,
    })
    try {
      await waitFor200(`http://127.0.0.1:${port}/health`, { process: started, intervalMs: 5 })
      return performance.now() - began
    } finally {
      await started.stop()
    }
  }
  const coldMs = await once()
  const warmMs: number[] = []
  for (let i = 0; i < 3; i++) warmMs.push(await once())
  const sorted = [...warmMs].sort((a, b) => a - b)
  return {
    coldMs,
    warmMs,
    warmMedianMs: sorted[1] ?? 0,
    note: 'from spawn() of `node src/main.ts serve` (APP_ENV=prod, SQLite, no Redis, pinned to the server core) to the first 200 on /health, polled every 5 ms; cold = new database file (runs the migrations) and an empty compile cache (NODE_COMPILE_CACHE, as the image sets it), warm = existing file and the cache the cold start filled',
  }
}

// --- profiles ------------------------------------------------------------------------------------

/**
 * Synchronous entry points whose inclusive time says what a subsystem costs per request (async
 * functions would be undercounted: their continuations run under the microtask queue).
 */
const SUBSYSTEMS =
  /^(requestCompleted \(src\/http\/access-log|LOG \(pino|applyRateLimit|sendCommand \(ioredis|_storeHeader|writeHead \(node|serve \(src\/http\/node-server|\(anonymous\) \(src\/http\/plugins\/request-lifecycle|parserOnIncoming|handleRequest \(fastify|serialize \(fastify|requireUserHook|execute \(mysql2|query \(mysql2|onStreamRead|afterWrite)/

interface WorkloadProfile {
  workload: string
  rps: number
  file: string
  top: HotFunction[]
  subsystems: HotFunction[]
}

async function profileWorkloads(
  servekitEnv: NodeJS.ProcessEnv,
  workloads: Array<{ name: string; load: (system: SystemName) => HttpLoad }>,
): Promise<WorkloadProfile[]> {
  const directory = join(RESULTS, NAME === 'latest' ? 'profiles' : `profiles-${NAME}`)
  rmSync(directory, { recursive: true, force: true })
  mkdirSync(directory, { recursive: true })
  const profiles: WorkloadProfile[] = []
  for (const workload of workloads) {
    const name = `servekit-${workload.name}.cpuprofile`
    const system = await startServekit(servekitEnv, 18_120, `profile-${workload.name}`, [
      '--cpu-prof',
      `--cpu-prof-dir=${directory}`,
      `--cpu-prof-name=${name}`,
    ])
    let load = workload.load('servekit')
    if (workload.name === 'post') {
      const token = await servekitLogin(system.baseUrl, 'bench-user', 'bench-password-1', false)
      load = { ...load, headers: { ...load.headers, authorization: `Bearer ${token}` } }
    }
    await wrk({ ...load, baseUrl: system.baseUrl, seconds: WARM_SECONDS })
    const fromUs = Number(process.hrtime.bigint() / 1000n)
    const outcome = await wrk({ ...load, baseUrl: system.baseUrl, seconds: Math.min(SECONDS, 8) })
    const toUs = Number(process.hrtime.bigint() / 1000n)
    await system.process.stop(30_000)
    const file = join(directory, name)
    if (!existsSync(file)) {
      say(`no profile written for ${workload.name}`)
      continue
    }
    const window = { fromUs, toUs, isExcludingIdle: true }
    profiles.push({
      workload: workload.name,
      rps: outcome.rps,
      file: relative(ROOT, file),
      top: summarizeCpuProfile(file, { ...window, top: 15 }),
      subsystems: inclusiveMatching(file, SUBSYSTEMS, { ...window, top: 12 }),
    })
    say(`profiled ${workload.name}: ${fmt(outcome.rps)} req/s under the profiler`)
  }
  return profiles
}

// --- targets and markdown -------------------------------------------------------------------------

function evaluateTargets(
  workloads: Record<string, WorkloadResult>,
  measures: {
    idleRssMb: number | undefined
    idleWebSockets: Record<string, unknown>
    startup: { coldMs: number; warmMedianMs: number }
    loopDelay: { metricsP99Ms: number | undefined; probeP99Ms: number }
  },
): Target[] {
  const withCpu = (target: Target, workload: WorkloadResult | undefined): Target =>
    workload?.cpuRatio === undefined
      ? target
      : { ...target, actual: `${target.actual} (CPU ratio ${workload.cpuRatio.toFixed(2)}×)` }
  const targets: Target[] = [
    withCpu(atLeast('/health vs peer', workloads.health?.rpsRatio, 2.0), workloads.health),
    atLeast('/health vs bare node:http', (workloads.health?.bareRatio ?? 0) * 100, 90, '%'),
    withCpu(atLeast('GET item (cache hit) vs peer', workloads.item?.rpsRatio, 4.0), workloads.item),
    withCpu(atLeast('list page vs peer', workloads.list?.rpsRatio, 3.0), workloads.list),
    withCpu(atLeast('authenticated POST vs peer', workloads.post?.rpsRatio, 6.0), workloads.post),
  ]
  for (const workload of Object.values(workloads)) {
    if (workload.skipped) {
      targets.push({
        name: `p99 ≤ ½ peer: ${workload.name}`,
        wanted: '≤ 0.50',
        actual: 'skipped',
        met: undefined,
      })
      continue
    }
    const ratio = workload.p99Ratio
    const p99 = atMost(`p99 ≤ ½ peer: ${workload.name}`, ratio, 0.5, '× peer p99')
    targets.push(p99)
  }
  const errors = Object.values(workloads).reduce(
    (sum, workload) =>
      sum + (workload.summary.servekit?.errors ?? 0) + (workload.summary.peer?.errors ?? 0),
    0,
  )
  const servekitErrors = Object.values(workloads).reduce(
    (sum, workload) => sum + (workload.summary.servekit?.errors ?? 0),
    0,
  )
  targets.push({
    name: 'no errors, no non-2xx',
    wanted: '0',
    actual: `servekit ${servekitErrors}, peer ${errors - servekitErrors}`,
    met: errors === 0,
    ...(errors === 0 ? {} : { missedBy: `${errors} errors or non-2xx answers` }),
  })
  targets.push(atMost('idle RSS', measures.idleRssMb, 80, 'MB'))
  const ws = measures.idleWebSockets as { rssMb?: number; open?: number; skipped?: string }
  targets.push(
    ws.skipped
      ? {
          name: '10,000 idle WebSockets RSS',
          wanted: '≤ 150 MB',
          actual: ws.skipped,
          met: undefined,
        }
      : atMost(`${fmt(ws.open ?? 0)} idle WebSockets RSS`, ws.rssMb, 150, 'MB'),
  )
  targets.push(
    atMost('start to first 200 (embedded, warm)', measures.startup.warmMedianMs, 1000, 'ms'),
  )
  targets.push(
    atMost('start to first 200 (embedded, cold: migrates)', measures.startup.coldMs, 1000, 'ms'),
  )
  targets.push(
    atMost('event-loop delay p99 during 50 logins', measures.loopDelay.metricsP99Ms, 50, 'ms'),
  )
  return targets
}

function renderMarkdown(report: {
  generatedAt: string
  durationSeconds: number
  settings: Record<string, unknown>
  machine: Record<string, unknown>
  indexes: Record<string, string[]>
  workloads: WorkloadResult[]
  measures: Record<string, unknown> & {
    idleRssMb?: number
    peerIdleRssMb?: number
    bareIdleRssMb?: number
    idleAfterLoadRssMb?: number
    loadRssPeakMb?: number
    peerLoadRssPeakMb?: number
    idleWebSockets: Record<string, unknown>
    startup: { coldMs: number; warmMs: number[]; warmMedianMs: number; note: string }
    loopDelay: Record<string, unknown> & {
      metricsP99Ms?: number
      probeP99Ms: number
      source: string
    }
  }
  targets: Target[]
  profiles: WorkloadProfile[]
}): string {
  const m = report.measures
  const ws = m.idleWebSockets as Record<string, number | string | undefined>
  const lines = [
    '# servekit vs the FastAPI peer',
    '',
    `Generated ${report.generatedAt} by \`npm run bench\` in ${report.durationSeconds} s.`,
    `One worker each pinned to CPU ${report.settings.serverCpus}, the load generator on CPU ${report.settings.loadCpus}; ` +
      `${report.settings.rounds} interleaved rounds (A B A B …) of ${report.settings.secondsPerRun} s per workload, ` +
      `wrk -t1 -c${report.settings.connections}; figures are the medians of the rounds; ratios are servekit ÷ peer ` +
      "(p99 ratio: lower is better). CPU µs/req is the server process's CPU time (all threads) per request, " +
      'and the CPU ratio peer ÷ servekit: on a shared, noisy machine it moves far less than req/s, since time ' +
      'taken by other processes is not counted.',
    '',
    workloadTable(report.workloads),
    '',
    '## Other measurements (servekit)',
    '',
    '| measure | value |',
    '|---|---|',
    `| RSS idle (2 s after start, before any load; compile cache filled by an earlier start) | ${m.idleRssMb} MB (peer ${m.peerIdleRssMb} MB; the bare node:http server, also run from TypeScript, ${m.bareIdleRssMb} MB) |`,
    `| RSS under load (peak) | ${m.loadRssPeakMb} MB (peer ${m.peerLoadRssPeakMb} MB) |`,
    `| RSS idle after the load | ${m.idleAfterLoadRssMb} MB |`,
    ws.skipped
      ? `| idle WebSockets | skipped: ${ws.skipped} |`
      : `| ${ws.open} idle WebSockets (${ws.failed} failed) | RSS ${ws.rssMb} MB (from ${ws.rssBeforeMb} MB: ${ws.bytesPerSocket} bytes a socket) |`,
    `| start to first 200, embedded | cold ${m.startup.coldMs.toFixed(0)} ms, warm ${m.startup.warmMs.map((v) => v.toFixed(0)).join(' / ')} ms |`,
    `| event-loop delay p99 during ${m.loopDelay.logins} logins (bcrypt 12) | ${m.loopDelay.metricsP99Ms?.toFixed(1)} ms (max ${(m.loopDelay.metricsMaxMs as number | undefined)?.toFixed(1)} ms; idle reading ${(m.loopDelay.idleP99Ms as number | undefined)?.toFixed(1)} ms); /health probe p99 ${m.loopDelay.probeP99Ms.toFixed(1)} ms; ${m.loopDelay.loginsOk}/${m.loopDelay.logins} logins in ${(m.loopDelay.loginsMs as number).toFixed(0)} ms |`,
    '',
    `Event-loop delay source: ${m.loopDelay.source}. Start-up: ${m.startup.note}.`,
    '',
    '## Targets (issue 10)',
    '',
    targetTable(report.targets),
    '',
    ...beforeAfter(report.workloads),
  ]
  if (report.profiles.length > 0) {
    lines.push('## Where servekit spends its time (CPU profiles under load)', '')
    lines.push(
      'Self time of the top functions while each workload ran (shares of busy time, idle left out), from ' +
        '`node --cpu-prof`; the .cpuprofile files are in bench/results/profiles/ (not committed; open them in Chrome DevTools) ' +
        'and `node bench/cpuprofile-summary.ts <file>` prints the same table.',
      '',
    )
    for (const profile of report.profiles) {
      lines.push(`### ${profile.workload} (${fmt(profile.rps)} req/s under the profiler)`, '')
      lines.push('| self % | total % | function |', '|---:|---:|---|')
      for (const row of profile.top.slice(0, 12)) {
        lines.push(
          `| ${row.selfPercent.toFixed(1)} | ${row.totalPercent.toFixed(1)} | \`${row.name}\` |`,
        )
      }
      lines.push('', 'Inclusive time of some entry points (what a subsystem costs):', '')
      lines.push('| total % | function |', '|---:|---|')
      for (const row of profile.subsystems) {
        lines.push(`| ${row.totalPercent.toFixed(1)} | \`${row.name}\` |`)
      }
      lines.push('')
    }
  }
  lines.push(
    '## Conditions',
    '',
    `- machine: ${report.machine.cpu}, ${report.machine.cores} cores; ${report.machine.node}; ${report.machine.python}`,
    `- servekit ${report.machine.commit}${SERVEKIT_ROOT === ROOT ? '' : ` (run from ${SERVEKIT_ROOT})`}: APP_ENV=prod, one worker, MariaDB + Redis, JSON logs with the access log to rotated files, ` +
      'metrics, request ids and traces, security headers, rate limits on (limits the bench cannot reach), load shedding on',
    `- peer: ${PEER_DIR}, uvicorn --loop uvloop --http httptools, one worker, no access log (as its README runs it)`,
    `- indexes on items: peer ${report.indexes.peer?.join(', ')}, servekit ${report.indexes.servekit?.join(', ')}`,
    '- the machine is shared and noisy: compare the ratios of one run, not absolute figures across runs',
    '',
  )
  return `${lines.join('\n')}\n`
}

/**
 * Servekit before and after the performance work, when bench/results/before.json is there (a run
 * with BENCH_NAME=before against the code as it was). CPU per request compares across runs far
 * better than req/s, which follows the machine's load.
 */
function beforeAfter(workloads: WorkloadResult[]): string[] {
  const path = join(RESULTS, 'before.json')
  if (NAME === 'before' || !existsSync(path)) return []
  const before = JSON.parse(readFileSync(path, 'utf8')) as {
    generatedAt: string
    workloads: WorkloadResult[]
  }
  const lines = [
    `## servekit before and after (before: ${before.generatedAt}, bench/results/before.md)`,
    '',
    '| workload | req/s before → after | CPU µs/req before → after | req/s ratio vs peer before → after | CPU ratio before → after |',
    '|---|---:|---:|---:|---:|',
  ]
  for (const workload of workloads) {
    const old = before.workloads.find((candidate) => candidate.name === workload.name)
    const [a, b] = [old?.summary.servekit, workload.summary.servekit]
    if (!a || !b) continue
    const ratio = (value: number | undefined) =>
      value === undefined ? '–' : `${value.toFixed(2)}×`
    lines.push(
      `| ${workload.title} | ${fmt(a.rps)} → ${fmt(b.rps)} | ${a.cpuUsPerRequest?.toFixed(0) ?? '–'} → ${b.cpuUsPerRequest?.toFixed(0) ?? '–'} | ${ratio(old?.rpsRatio)} → ${ratio(workload.rpsRatio)} | ${ratio(old?.cpuRatio)} → ${ratio(workload.cpuRatio)} |`,
    )
  }
  lines.push('')
  return lines
}

async function machine(): Promise<Record<string, unknown>> {
  const python = await run(PYTHON, [
    '-c',
    'import sys, fastapi, uvicorn; print(f"Python {sys.version.split()[0]}, FastAPI {fastapi.__version__}, Uvicorn {uvicorn.__version__}")',
  ]).catch(() => ({ stdout: 'python: unknown' }))
  const commit = await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).catch(() => ({
    stdout: 'unknown',
  }))
  const dirty = await run('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']).catch(() => ({
    stdout: '',
  }))
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: `Node ${process.version}`,
    python: python.stdout.trim(),
    commit: `${commit.stdout.trim()}${dirty.stdout.trim() ? ' + uncommitted changes in src/' : ''}`,
  }
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms))
const mbNumber = (bytes: number | undefined) =>
  bytes === undefined ? undefined : Math.round((bytes / 1024 / 1024) * 10) / 10
const mb = (bytes: number | undefined) =>
  bytes === undefined ? '?' : (bytes / 1024 / 1024).toFixed(1)

try {
  await main()
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
} finally {
  await stopAll()
  removeWrkScripts()
  keepAlive.destroy()
  rmSync(work, { recursive: true, force: true })
}
process.exit()
