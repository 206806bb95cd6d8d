import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import { run } from './processes.ts'

/** The Debian packages the peer needs (its README), and wrk. */
const PEER_PACKAGES = [
  'python3-fastapi',
  'python3-uvicorn',
  'python3-uvloop',
  'python3-httptools',
  'python3-sqlalchemy',
  'python3-aiomysql',
  'python3-redis',
  'python3-pydantic',
  'python3-websockets',
  'python3-greenlet',
  'python3-jwt',
]
const PEER_MODULES = [
  'fastapi',
  'uvicorn',
  'uvloop',
  'httptools',
  'sqlalchemy',
  'aiomysql',
  'redis',
  'pydantic',
  'websockets',
  'greenlet',
  'jwt',
]

async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args, { timeoutMs: 30_000 })
    return true
  } catch {
    return false
  }
}

/** Installs wrk and the peer's Python packages from Debian when any is missing. */
export async function ensurePackages(python: string, say: (line: string) => void): Promise<void> {
  const missing: string[] = []
  if (!(await succeeds('sh', ['-c', 'command -v wrk']))) missing.push('wrk')
  if (!(await succeeds(python, ['-c', `import ${PEER_MODULES.join(', ')}`])))
    missing.push(...PEER_PACKAGES)
  if (!(await succeeds('sh', ['-c', 'command -v taskset']))) missing.push('util-linux')
  if (missing.length === 0) return
  say(`installing Debian packages: ${missing.join(' ')}`)
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n']
  const apt = async (args: string[]) => {
    const [command, ...rest] = [...sudo, 'apt-get', ...args]
    await run(command as string, rest, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 600_000,
    })
  }
  await apt(['update', '-qq'])
  await apt(['install', '-y', '-qq', ...missing])
}

/** Resolves when something accepts TCP connections on host:port. */
export function reachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export interface MysqlTarget {
  host: string
  port: number
  user: string
  password: string
}

/**
 * Makes sure the bench user exists with every right on the bench databases. The user is tried
 * first; only when it cannot connect is the root account used (the mariadb client over the local
 * socket, as the peer's README does, else root over TCP without a password).
 */
export async function ensureDatabases(
  target: MysqlTarget,
  databases: string[],
  say: (line: string) => void,
): Promise<void> {
  const canUse = async () => {
    try {
      const connection = await mysql.createConnection({ ...target })
      try {
        for (const database of databases)
          await connection.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``)
      } finally {
        await connection.end()
      }
      return true
    } catch {
      return false
    }
  }
  if (await canUse()) return
  say(`creating the MariaDB user ${target.user} and the databases ${databases.join(', ')}`)
  const statements = [
    ...databases.map((database) => `CREATE DATABASE IF NOT EXISTS \`${database}\``),
    `CREATE USER IF NOT EXISTS '${target.user}'@'127.0.0.1' IDENTIFIED BY '${target.password}'`,
    `CREATE USER IF NOT EXISTS '${target.user}'@'localhost' IDENTIFIED BY '${target.password}'`,
    ...databases.flatMap((database) => [
      `GRANT ALL ON \`${database}\`.* TO '${target.user}'@'127.0.0.1'`,
      `GRANT ALL ON \`${database}\`.* TO '${target.user}'@'localhost'`,
    ]),
    'FLUSH PRIVILEGES',
  ]
  const client = ['/usr/bin/mariadb', '/usr/bin/mysql'].find((path) => existsSync(path))
  let done = false
  if (client) done = await succeeds(client, ['-uroot', '-e', statements.join('; ')])
  if (!done) {
    const root = await mysql.createConnection({
      host: target.host,
      port: target.port,
      user: 'root',
    })
    try {
      for (const statement of statements) await root.query(statement)
    } finally {
      await root.end()
    }
  }
  if (!(await canUse()))
    throw new Error(`the MariaDB user ${target.user} still cannot use ${databases.join(', ')}`)
}

/** Drops and recreates a database the bench owns (servekit's: its migrations then build it). */
export async function recreateDatabase(target: MysqlTarget, database: string): Promise<void> {
  const connection = await mysql.createConnection({ ...target })
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.query(`CREATE DATABASE \`${database}\``)
  } finally {
    await connection.end()
  }
}

/** Runs a query on one database and returns its rows. */
export async function query<T>(target: MysqlTarget, database: string, sql: string): Promise<T[]> {
  const connection = await mysql.createConnection({
    ...target,
    database,
    supportBigNumbers: true,
    bigNumberStrings: true,
  })
  try {
    const [rows] = await connection.query(sql)
    return rows as T[]
  } finally {
    await connection.end()
  }
}

/** Deletes the keys under the bench's own prefixes (never a flush: Redis is shared). */
export async function deleteRedisKeys(url: string, prefixes: string[]): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  let deleted = 0
  try {
    for (const prefix of prefixes) {
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) deleted += await redis.unlink(...keys)
      } while (cursor !== '0')
    }
  } finally {
    redis.disconnect()
  }
  return deleted
}
