import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { integrationApp, signUp } from './helpers.ts'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'
const CLIENT = fileURLToPath(new URL('./grpc_client.py', import.meta.url))

/** Python's grpcio comes from Debian's python3-grpcio (scripts/ensure-tools.sh installs it). */
async function grpcioMissing(): Promise<string | false> {
  try {
    await run(PYTHON, ['-c', 'import grpc'], { timeout: 10_000 })
    return false
  } catch {
    const reason = `${PYTHON} cannot import grpc: install python3-grpcio (scripts/ensure-tools.sh)`
    if (process.env.CI === 'true') throw new Error(`${reason}; CI requires it`)
    return reason
  }
}

test('an independent client (Python grpcio) calls GetUser and the health check', {
  skip: await grpcioMissing(),
}, async (t) => {
  const { baseUrl, container } = await integrationApp(t, { GRPC_PORT: '0' })
  const port = container.integrations.grpcServer?.port
  assert.ok(port)
  const alice = await signUp(baseUrl, 'alice')
  const { stdout } = await run(
    PYTHON,
    [CLIENT, `127.0.0.1:${port}`, alice.token, 'python-client', alice.id],
    { timeout: 30_000 },
  )
  const answer = JSON.parse(stdout) as {
    health: string
    user: { id: string; username: string; created_at: string }
    without_token: string
  }
  assert.equal(answer.health, 'SERVING')
  assert.equal(answer.user.id, alice.id)
  assert.equal(answer.user.username, 'alice')
  assert.match(answer.user.created_at, /^\d{4}-\d\d-\d\dT.*Z$/)
  assert.equal(answer.without_token, 'UNAUTHENTICATED')
})
