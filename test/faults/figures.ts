import assert from 'node:assert/strict'
import { appendFileSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'

/** One measured figure of the fault suite, beside the figure it must meet. */
export interface Figure {
  /** The numbered item of the suite (see CATALOGUE). */
  item: number
  /** What was measured, e.g. "stock on mariadb, 3 API processes". */
  name: string
  /** What was seen, e.g. "100 completed, 400 rejected, stock 0". */
  measured: string
  /** What passes, e.g. "exactly 100 / 400 / 0, never negative". */
  pass: string
  ok: boolean
}

/** Where each test process appends its figures, one JSON line each; the runner reads them. */
export const FIGURES_FILE =
  process.env.FAULTS_FIGURES ?? fileURLToPath(new URL('./results/figures.jsonl', import.meta.url))

/**
 * Records `figure` for the report and the test output, then fails the test unless it passed.
 * Record before any other assertion that could end the test, so a failure still has its figure.
 */
export function expectFigure(t: TestContext, figure: Figure): void {
  mkdirSync(dirname(FIGURES_FILE), { recursive: true })
  appendFileSync(FIGURES_FILE, `${JSON.stringify(figure)}\n`)
  t.diagnostic(
    `${figure.ok ? 'pass' : 'FAIL'}: ${figure.name}: ${figure.measured} (pass: ${figure.pass})`,
  )
  assert.ok(figure.ok, `${figure.name}: measured ${figure.measured}; pass needs ${figure.pass}`)
}

/** The suite's items, in the order the report lists them. */
export const CATALOGUE: Readonly<Record<number, string>> = {
  1: 'Stock: 500 concurrent orders for 100 units; random quantities (fast-check)',
  2: 'Lock holder paused past its TTL (SIGSTOP, SIGCONT)',
  3: 'Worker SIGKILLed at random moments during 1,000 order jobs',
  4: 'SIGTERM of an API process under 200 connections',
  5: 'Redis paused, then shut down for 10 s',
  6: 'Database stopped for 10 s',
  7: 'Malformed requests generated from the route schemas',
  8: 'Slow clients (slowhttptest: slowloris, slow body)',
  9: 'Authorisation sweep from the OpenAPI document; mass assignment',
  10: 'Forged and invalid tokens; short HMAC secret in prod',
  11: 'Login timing, logins under load, password guessing',
  12: 'Overload at twice capacity',
  13: 'Realtime: WebSocket and SSE clients over three processes, one killed',
  14: 'Schedules: 100 ticks, three scheduler processes',
}

/** Median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  return percentile(values, 50)
}

/** The `p`th percentile of `values` by nearest rank (0 for none). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}
