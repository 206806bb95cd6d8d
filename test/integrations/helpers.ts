import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/app.ts'

/**
 * The real app for these suites: cheap bcrypt, and no load shedding, which would answer 503
 * when the machine is busy with other suites (its own tests are in test/ops).
 */
export function integrationApp(t: TestContext, env: Record<string, string> = {}): Promise<TestApp> {
  return buildTestApp(t, { BCRYPT_COST: '4', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
}

/** A signed-up, logged-in user of the app at `baseUrl`. */
export interface TestUser {
  id: string
  username: string
  token: string
}

/** Registers `username` and logs in over real HTTP. */
export async function signUp(baseUrl: string, username: string): Promise<TestUser> {
  const password = 'correct horse battery'
  const post = (path: string, body: unknown) =>
    fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const registered = await post('/api/auth/register', { username, password })
  assert.equal(registered.status, 201, await registered.clone().text())
  const { id } = (await registered.json()) as { id: string }
  const login = await post('/api/auth/login', { username, password })
  assert.equal(login.status, 200)
  const { access_token: token } = (await login.json()) as { access_token: string }
  return { id, username, token }
}

/** The value at `share` (0..1) of sorted numbers. */
export function percentile(sorted: readonly number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0
}
