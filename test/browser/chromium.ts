import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

/*
 * Real headless Chromium for the browser tests: Debian's chromium package, driven by
 * playwright-core (which downloads no browser of its own).
 */

/** Where Debian installs it; CHROMIUM_PATH overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** test-results/ at the repository root (git-ignored): screenshots go there. */
export const RESULTS_DIR = fileURLToPath(new URL('../../test-results/', import.meta.url))

/**
 * Options for a browser suite: run when Chromium is installed; otherwise skip saying why,
 * except under CI=true, where a missing browser fails the run (.ci/run installs it).
 */
export function chromiumAvailability(): { skip: string | false } {
  if (existsSync(CHROMIUM_PATH)) return { skip: false }
  const reason = `Chromium is not installed at ${CHROMIUM_PATH} (bash scripts/ensure-browser.sh installs it)`
  if (process.env.CI === 'true') throw new Error(`${reason}; CI requires it`)
  return { skip: reason }
}

/** Flags for a machine without network access: no background traffic, no sandbox (root). */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface BrowserPage {
  page: Page
  context: BrowserContext
  /** Uncaught page errors and console errors (a CSP violation shows up here). */
  errors: string[]
  /** Saves a full-page screenshot as test-results/<name>.png. */
  screenshot(name: string): Promise<string>
}

/** A fresh Chromium with a profile of its own and one page; closed when the test ends. */
export async function openPage(t: TestContext): Promise<BrowserPage> {
  const profile = mkdtempSync(join(tmpdir(), 'servekit-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ARGS,
    viewport: { width: 1100, height: 800 },
  })
  t.after(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  const page = context.pages()[0] ?? (await context.newPage())
  page.setDefaultTimeout(10_000)
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`)
  })
  return {
    page,
    context,
    errors,
    async screenshot(name) {
      mkdirSync(RESULTS_DIR, { recursive: true })
      const path = join(RESULTS_DIR, `${name}.png`)
      await page.screenshot({ path, fullPage: true })
      return path
    },
  }
}
