import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { deleteKeysUnder } from '../../src/infra/redis/redis-testing.ts'

/**
 * The real servers the suites talk to. Defaults are this machine's loopback services; override
 * with TEST_MYSQL_URL, TEST_POSTGRES_URL, TEST_REDIS_URL.
 */
export const serviceUrls = {
  mysql: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
} as const

export type ServiceName = keyof typeof serviceUrls

const isCi = process.env.CI === 'true'
const reachability = new Map<ServiceName, Promise<boolean>>()

function isReachable(name: ServiceName): Promise<boolean> {
  let known = reachability.get(name)
  if (!known) {
    const url = new URL(serviceUrls[name])
    const port = Number(url.port || { mysql: 3306, postgres: 5432, redis: 6379 }[name])
    known = new Promise<boolean>((resolve) => {
      const socket = connect({ host: url.hostname, port, timeout: 1000 })
      // The probe socket is closed in every case: left open, it keeps the test process alive.
      const settle = (isUp: boolean) => {
        socket.destroy()
        resolve(isUp)
      }
      socket.once('connect', () => settle(true))
      socket.once('error', () => settle(false))
      socket.once('timeout', () => settle(false))
    })
    reachability.set(name, known)
  }
  return known
}

/**
 * Options for a suite that needs `name`: run when it answers; otherwise skip with the reason in
 * the output, except under CI=true, where an unreachable server fails the run instead.
 */
export async function whenReachable(name: ServiceName): Promise<{ skip: string | false }> {
  if (await isReachable(name)) return { skip: false }
  const reason = `${name} is not reachable at ${redact(serviceUrls[name])}`
  if (isCi) throw new Error(`${reason}; CI requires it`)
  return { skip: reason }
}

function redact(url: string): string {
  const parsed = new URL(url)
  if (parsed.password) parsed.password = '***'
  return parsed.toString()
}

/**
 * A unique key prefix (use it as APP_NAME) and a client on the shared Redis; every key under the
 * prefix is deleted when the test ends, so concurrent suites never see each other's keys.
 */
export async function useRedisPrefix(t: TestContext): Promise<{ prefix: string; redis: Redis }> {
  const prefix = `t-${randomBytes(4).toString('hex')}`
  const redis = new Redis(serviceUrls.redis)
  t.after(async () => {
    await deleteKeysUnder(redis, prefix)
    redis.disconnect()
  })
  return { prefix, redis }
}
