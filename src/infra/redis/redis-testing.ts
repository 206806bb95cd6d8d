import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { Redis } from 'ioredis'

/*
 * Test support for the Redis-backed suites. Nothing in production imports this file.
 */

/** Every key matching `pattern`, by SCAN (never KEYS, which blocks a shared server). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** Deletes a test's keys from the shared server: only those under its own prefix. */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  const keys = await scanKeys(redis, `${prefix}:*`)
  if (keys.length > 0) await redis.del(...keys)
}

/**
 * A private, throw-away redis-server (no persistence) that a test may stop, pause
 * and restart on the same port, unlike the shared server other suites use.
 */
export interface RedisTestServer {
  readonly port: number
  readonly url: string
  /** Starts the server (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>
  /** Stops the server and waits for the process to end. */
  stop(): Promise<void>
  /** SIGSTOP: connections stay open but nothing answers (a hung server or a partition). */
  pause(): void
  resume(): void
}

/** Spawns `redis-server` on a free loopback port; stops it when the test process exits. */
export async function startRedisTestServer(): Promise<RedisTestServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const killOnExit = () => child?.kill('SIGKILL')
  process.once('exit', killOnExit)

  const server: RedisTestServer = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async start() {
      if (child) throw new Error('redis test server is already running')
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      )
      await waitForPort(port, 5000)
    },
    async stop() {
      const running = child
      if (!running) return
      child = undefined
      if (running.exitCode === null && running.signalCode === null) {
        const exited = once(running, 'exit')
        running.kill('SIGCONT')
        running.kill('SIGTERM')
        await exited
      }
    },
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
  }
  await server.start()
  return server
}

async function freePort(): Promise<number> {
  const probe = createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const address = probe.address()
  probe.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const isOpen = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (isOpen) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`redis-server did not listen on port ${port} within ${timeoutMs} ms`)
}
