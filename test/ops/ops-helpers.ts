import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { createContainer } from '../../src/container/index.ts'
import { type App, createServer } from '../../src/http/server.ts'
import { createLoggers } from '../../src/infra/logger/index.ts'
import { scratchDir, type TestApp, type TestAppOptions, testConfig } from '../helpers/app.ts'

export type LogLine = Record<string, unknown>

/** A destination that keeps every JSON log line written to it. */
export function captureLines(): { lines: LogLine[]; stream: Writable } {
  const lines: LogLine[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, stream }
}

/**
 * buildTestApp with the logs kept: the real app on a loopback port, info-level JSON lines of
 * every logger (system, access, business) collected in `lines`.
 */
export async function buildLoggedApp(
  t: TestContext,
  overrides: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp & { lines: LogLine[] }> {
  const config = testConfig({ LOG_LEVEL: 'info', ...overrides })
  const { lines, stream } = captureLines()
  const container = await createContainer(config, { logger: createLoggers(config, stream) })
  const app = await createServer(container)
  await options.beforeListen?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    await container.close()
  })
  return { app, container, config, lines, baseUrl: baseUrlOf(app) }
}

export function baseUrlOf(app: App, scheme = 'http'): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  return `${scheme}://127.0.0.1:${address.port}`
}

/** The path of a program on PATH, or undefined. */
export function which(program: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost made with the openssl CLI, or
 * undefined when openssl is missing.
 */
export function selfSignedCertificate():
  | { certFile: string; keyFile: string; cert: string }
  | undefined {
  const openssl = which('openssl')
  if (!openssl) return undefined
  const dir = scratchDir()
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  if (!existsSync(certFile)) return undefined
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
