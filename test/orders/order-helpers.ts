import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { deleteKeysUnder } from '../../src/infra/redis/redis-testing.ts'
import { type RunningProcess, runCli, stopOnExit } from '../helpers/process.ts'
import { serviceUrls } from '../helpers/services.ts'

export interface Answer<T = Record<string, unknown>> {
  status: number
  headers: Headers
  body: T
}

/** JSON over real HTTP against `baseUrl`. */
export function client(baseUrl: string) {
  return async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    })
    const text = await response.text()
    return {
      status: response.status,
      headers: response.headers,
      body: text ? JSON.parse(text) : {},
    }
  }
}

/** Registers a new user and resolves to its bearer token. */
export async function signIn(baseUrl: string, username = `u${randomBytes(4).toString('hex')}`) {
  const call = client(baseUrl)
  const credentials = { username, password: 'a-good-password' }
  const registered = await call('POST', '/api/auth/register', { body: credentials })
  assert.equal(registered.status, 201, JSON.stringify(registered.body))
  const login = await call<{ access_token: string }>('POST', '/api/auth/login', {
    body: credentials,
  })
  assert.equal(login.status, 200)
  return login.body.access_token
}

/** Creates an item with `stock` and resolves to its id. */
export async function createItem(baseUrl: string, token: string, stock: number): Promise<string> {
  const created = await client(baseUrl)<{ id: string }>('POST', '/api/items', {
    token,
    body: { name: 'Kettle', price: 20, stock },
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  return created.body.id
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** A unique APP_NAME: the prefix of every Redis key the test's processes write. */
export function uniqueAppName(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`
}

/**
 * Deletes the keys under `appName` from the shared Redis. Register it with t.after once the
 * app and workers are set up: hooks run in order, so it runs after they have closed.
 */
export async function deleteRedisKeys(appName: string): Promise<void> {
  const redis = new Redis(serviceUrls.redis, { maxRetriesPerRequest: 3 })
  try {
    await deleteKeysUnder(redis, appName)
  } finally {
    redis.disconnect()
  }
}

/**
 * Settings every order test uses: fast hashes, and no rate limit or load shedding in the way
 * (these tests load a 2-core machine on purpose, and check correctness, not back-pressure).
 */
export const TEST_ENV = {
  BCRYPT_COST: '4',
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  RATE_LIMIT_PER_MINUTE: '100000000',
  RATE_LIMIT_USER_PER_MINUTE: '100000000',
} as const

/** Starts `node src/main.ts <command>`; resolves once its log says `readyMessage`. */
export async function startCommand(
  t: { after(fn: () => void | Promise<void>): void },
  command: 'worker' | 'scheduler',
  env: Record<string, string>,
  readyMessage = command === 'worker' ? 'worker started' : 'scheduler started',
): Promise<RunningProcess> {
  const run = runCli([command], { APP_ENV: 'test', ...env })
  t.after(stopOnExit(run))
  await waitFor(
    `${command} ready`,
    async () => {
      if (run.output().includes(`"msg":"${readyMessage}`)) return true
      if (run.child.exitCode !== null)
        throw new Error(`${command} exited ${run.child.exitCode}: ${run.output()}`)
      return undefined
    },
    30_000,
  )
  return run
}

/** SIGTERM, then the exit code (or signal) and what the process printed. */
export async function terminate(run: RunningProcess): Promise<number | string> {
  run.child.kill('SIGTERM')
  return run.exited
}
