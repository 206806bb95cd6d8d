import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { Config } from '../../src/config/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { type Container, createContainer } from '../../src/container/index.ts'
import { type App, createServer } from '../../src/http/server.ts'

export interface TestApp {
  app: App
  container: Container
  config: Readonly<Config>
  /** http://127.0.0.1:<port>, the real listening server. */
  baseUrl: string
}

export interface TestAppOptions {
  /** Extra routes to register before listening (for testing cross-cutting behaviour). */
  beforeListen?: (app: App) => void | Promise<void>
}

let scratchRoot: string | undefined

/** A new empty folder, removed when the test process exits. */
export function scratchDir(): string {
  if (!scratchRoot) {
    const root = mkdtempSync(join(tmpdir(), 'servekit-test-'))
    process.once('exit', () => rmSync(root, { recursive: true, force: true }))
    scratchRoot = root
  }
  return mkdtempSync(join(scratchRoot, 'case-'))
}

/** Settings for a test: silent logs, a fresh SQLite file, a free port. */
export function testConfig(overrides: Record<string, string> = {}): Readonly<Config> {
  const dir = scratchDir()
  return loadConfig(
    {
      APP_ENV: 'test',
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: `sqlite:${join(dir, 'test.db')}`,
      // Load shedding answers 503 when the event loop lags, which a test machine running many
      // suites at once does; the suites that test shedding turn it back on.
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
      ...overrides,
    },
    { readFiles: false },
  )
}

/** Boots the real app on an ephemeral loopback port; closes it when the test ends. */
export async function buildTestApp(
  t: TestContext,
  overrides: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const config = testConfig(overrides)
  const container = await createContainer(config)
  const app = await createServer(container)
  await options.beforeListen?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    await container.close()
  })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  return { app, container, config, baseUrl: `http://127.0.0.1:${address.port}` }
}
