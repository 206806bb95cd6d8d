import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { createConnection as createMysqlConnection } from 'mysql2/promise'
import pg from 'pg'
import { freePort } from '../helpers/process.ts'

/**
 * A Redis, PostgreSQL or MariaDB server of the test's own, on a free loopback port, with its data
 * in a temporary folder: the fault tests stop, pause and restart it without touching the shared
 * servers other suites (and other people) use. `close()` kills it and removes its folder; it is
 * registered with the test's `after` and also runs when the test process exits.
 */
export interface PrivateServer {
  readonly kind: 'redis' | 'postgres' | 'mysql'
  /** The URL the app's config takes (REDIS_URL or DATABASE_URL), database `test` for the SQL ones. */
  readonly url: string
  readonly port: number
  /** Whether the server process runs now (it may be paused). */
  readonly isRunning: boolean
  /** SIGSTOP: the socket stays open and accepts connections, but nothing answers. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
  /** A clean shutdown (data kept); resolves once the process has exited. */
  stop(): Promise<void>
  /** Starts it again on the same port and data; resolves once it answers a query. */
  start(): Promise<void>
  /** Kills it (SIGKILL, after SIGCONT) and removes its data. Safe to call twice. */
  close(): Promise<void>
}

interface Cleanup {
  after(fn: () => void | Promise<void>): void
}

/**
 * node:test runs `after` hooks in the order they were registered, so a server started first
 * would be killed before the processes and clients that use it close (which may then hang on a
 * reconnect). This stack registers one hook on `t` and runs what is pushed on it last first:
 * pass it wherever a `{ after }` is taken.
 */
export function cleanupStack(t: Cleanup): Cleanup {
  const stack: Array<() => void | Promise<void>> = []
  t.after(async () => {
    const errors: unknown[] = []
    while (stack.length > 0) {
      try {
        await stack.pop()?.()
      } catch (error) {
        errors.push(error)
      }
    }
    if (errors.length > 0) throw errors[0]
  })
  return { after: (fn) => stack.push(fn) }
}

const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 20_000

interface Recipe {
  kind: PrivateServer['kind']
  port: number
  url: string
  dataDir: string
  /** Spawns the server process (already initialised data). */
  spawnServer(): ChildProcess
  /** Resolves once a real query succeeds; rejects on failure (the caller retries). */
  probe(): Promise<void>
  /** The signal for a clean, fast shutdown. */
  stopSignal: NodeJS.Signals
}

const liveServers = new Set<{ kill(): void }>()
// If the test process ends without running its hooks: kill and remove synchronously.
process.once('exit', () => {
  for (const server of liveServers) server.kill()
})

function makeServer(t: Cleanup, recipe: Recipe): PrivateServer {
  let child: ChildProcess | undefined
  let exited: Promise<unknown> | undefined
  let output = ''
  let isClosed = false

  const isAlive = () => child !== undefined && child.exitCode === null && child.signalCode === null

  const launch = async () => {
    output = ''
    const spawned = recipe.spawnServer()
    child = spawned
    exited = once(spawned, 'exit')
    spawned.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000)
    })
    spawned.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000)
    })
    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (!isAlive())
        throw new Error(`${recipe.kind} exited at start (${spawned.exitCode}): ${output}`)
      try {
        await recipe.probe()
        return
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(
            `${recipe.kind} on port ${recipe.port} did not answer within ${READY_TIMEOUT_MS} ms: ${(error as Error).message}\n${output}`,
          )
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  const signal = (name: NodeJS.Signals) => {
    if (isAlive()) child?.kill(name)
  }

  const server: PrivateServer = {
    kind: recipe.kind,
    url: recipe.url,
    port: recipe.port,
    get isRunning() {
      return isAlive()
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async stop() {
      if (!isAlive()) return
      signal('SIGCONT')
      signal(recipe.stopSignal)
      const timer = setTimeout(() => signal('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
    async start() {
      if (isClosed) throw new Error(`${recipe.kind}: closed`)
      if (isAlive()) return
      await launch()
    },
    async close() {
      if (isClosed) return
      isClosed = true
      liveServers.delete(killer)
      if (isAlive()) {
        signal('SIGCONT')
        signal('SIGKILL')
        await exited
      }
      rmSync(recipe.dataDir, { recursive: true, force: true })
    },
  }
  const killer = {
    kill() {
      signal('SIGCONT')
      signal('SIGKILL')
      rmSync(recipe.dataDir, { recursive: true, force: true })
    },
  }
  liveServers.add(killer)
  t.after(() => server.close())
  return server
}

async function started(t: Cleanup, recipe: Recipe): Promise<PrivateServer> {
  const server = makeServer(t, recipe)
  try {
    await server.start()
  } catch (error) {
    await server.close()
    throw error
  }
  return server
}

/**
 * A private redis-server with an append-only file synced at every write, so a stop and start
 * loses nothing (the queue's jobs survive the outage as they would on a persistent server).
 */
export async function startPrivateRedis(t: Cleanup): Promise<PrivateServer> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'servekit-redis-'))
  const url = `redis://127.0.0.1:${port}/0`
  // biome-ignore format: one option per line reads best
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no', '--daemonize', 'no',
    '--logfile', '',
  ]
  return started(t, {
    kind: 'redis',
    port,
    url,
    dataDir,
    spawnServer: () => spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }),
    probe: async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 1000,
      })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.ping()
      } finally {
        client.disconnect()
      }
    },
    stopSignal: 'SIGTERM',
  })
}

const PG_BIN = '/usr/lib/postgresql/15/bin'

/**
 * A private PostgreSQL 15 cluster (initdb as the postgres user into a temporary folder, trust
 * authentication, durability off for speed) with a database `test`. stop() is a fast shutdown
 * (SIGINT: sessions are ended, as `pg_ctl stop -m fast` does).
 */
export async function startPrivatePostgres(t: Cleanup): Promise<PrivateServer> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'servekit-pg-'))
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
  chownSync(dataDir, uid, gid)
  const pgData = join(dataDir, 'data')
  const socketDir = join(dataDir, 'sock')
  mkdirSync(socketDir)
  chownSync(socketDir, uid, gid)
  execFileSync(
    'runuser',
    // biome-ignore format: one option per line reads best
    ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', pgData, '-A', 'trust', '-U', 'postgres',
      '-E', 'UTF8', '--no-sync', '--no-instructions'],
    { stdio: 'pipe', timeout: 60_000 },
  )
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`
  const url = `postgres://postgres@127.0.0.1:${port}/test`
  let hasDatabase = false
  const server = await started(t, {
    kind: 'postgres',
    port,
    url,
    dataDir,
    spawnServer: () =>
      spawn(
        `${PG_BIN}/postgres`,
        // biome-ignore format: one option per line reads best
        ['-D', pgData, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1',
          '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
          '-c', 'shared_buffers=16MB', '-c', 'max_connections=60'],
        { uid, gid, cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    probe: async () => {
      const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 })
      client.on('error', () => {})
      await client.connect()
      try {
        if (!hasDatabase) {
          await client.query('create database test')
          hasDatabase = true
        } else await client.query('select 1')
      } finally {
        await client.end().catch(() => {})
      }
    },
    stopSignal: 'SIGINT',
  })
  return server
}

/**
 * A private MariaDB (mariadb-install-db into a temporary folder, then mariadbd with its own
 * datadir, socket and port; root without a password) with a database `test`. stop() is SIGTERM,
 * a normal shutdown.
 */
export async function startPrivateMariadb(t: Cleanup): Promise<PrivateServer> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'servekit-maria-'))
  const datadir = join(dataDir, 'data')
  const socket = join(dataDir, 'mysqld.sock')
  // biome-ignore format: one option per line reads best
  const serverOptions = [
    '--no-defaults', `--datadir=${datadir}`, `--socket=${socket}`, `--port=${port}`,
    '--bind-address=127.0.0.1', '--user=root', `--pid-file=${join(dataDir, 'mysqld.pid')}`,
    '--skip-log-bin', '--skip-name-resolve', '--innodb-buffer-pool-size=32M',
    '--innodb-log-file-size=16M', '--innodb-flush-log-at-trx-commit=0', '--max-connections=80',
    '--performance-schema=OFF', `--log-error=${join(dataDir, 'error.log')}`,
  ]
  execFileSync(
    'mariadb-install-db',
    // biome-ignore format: one option per line reads best
    ['--no-defaults', `--datadir=${datadir}`, '--user=root', '--auth-root-authentication-method=normal',
      '--skip-test-db', '--skip-name-resolve'],
    { stdio: 'pipe', timeout: 120_000 },
  )
  const url = `mysql://root@127.0.0.1:${port}/test`
  let hasDatabase = false
  return started(t, {
    kind: 'mysql',
    port,
    url,
    dataDir,
    spawnServer: () => spawn('mariadbd', serverOptions, { stdio: ['ignore', 'pipe', 'pipe'] }),
    probe: async () => {
      const connection = await createMysqlConnection({
        host: '127.0.0.1',
        port,
        user: 'root',
        connectTimeout: 1000,
      })
      try {
        if (!hasDatabase) {
          await connection.query('create database if not exists test character set utf8mb4')
          hasDatabase = true
        } else await connection.query('select 1')
      } finally {
        await connection.end().catch(() => {})
      }
    },
    stopSignal: 'SIGTERM',
  })
}
