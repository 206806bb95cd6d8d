import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'
import { client, createItem, signIn, TEST_ENV, waitFor } from './order-helpers.ts'

test('embedded `serve` runs the order jobs itself (no worker process) and stops its worker on SIGTERM', async (t) => {
  const port = await freePort()
  const run = runCli(['serve'], {
    ...TEST_ENV,
    APP_ENV: 'test',
    PORT: String(port),
    DATABASE_URL: `sqlite:${join(scratchDir(), 'serve.db')}`,
  })
  t.after(stopOnExit(run))
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForOk(`${baseUrl}/health`, 20_000)
  const call = client(baseUrl)
  const token = await signIn(baseUrl)
  const itemId = await createItem(baseUrl, token, 2)
  const placed = await call<{ id: string }>('POST', '/api/orders', {
    token,
    body: { item_id: itemId, quantity: 2 },
  })
  assert.equal(placed.status, 202)
  const status = await waitFor('order settled', async () => {
    const got = await call<{ status: string }>('GET', `/api/orders/${placed.body.id}`, { token })
    return got.body.status === 'pending' ? undefined : got.body.status
  })
  assert.equal(status, 'completed')
  const schedules = await call<{ schedules: Array<{ next_run_at: string | null }> }>(
    'GET',
    '/api/schedules',
    { token },
  )
  assert.ok(schedules.body.schedules[0]?.next_run_at, 'the embedded scheduler runs')

  run.child.kill('SIGTERM')
  assert.equal(await run.exited, 0, run.output())
  assert.match(run.output(), /"kind":"in-process".*"msg":"worker started"/)
  assert.match(run.output(), /"msg":"worker stopped"/)
})
