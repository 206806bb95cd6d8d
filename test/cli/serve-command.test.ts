import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { scratchDir } from '../helpers/app.ts'
import { freePort, runCli, stopOnExit, waitForOk } from '../helpers/process.ts'

const embedded = () => ({ APP_ENV: 'test', DATABASE_URL: `sqlite:${join(scratchDir(), 'cli.db')}` })

test('serve with PORT=abc exits 2 with one line naming PORT', async () => {
  const run = runCli(['serve'], { ...embedded(), PORT: 'abc' })
  assert.equal(await run.exited, 2)
  const lines = run.output().trim().split('\n')
  assert.equal(lines.length, 1, run.output())
  assert.match(
    lines[0] ?? '',
    /^config error: PORT="abc" is invalid: expected an integer from 0 to 65535$/,
  )
})

test('--help prints the usage and exits 0; an unknown command exits 2', async () => {
  const help = runCli(['--help'], embedded())
  assert.equal(await help.exited, 0)
  assert.match(help.output(), /Usage: servekit <command>/)
  const unknown = runCli(['fly'], embedded())
  assert.equal(await unknown.exited, 2)
  assert.match(unknown.output(), /unknown command: fly/)
})

test('SIGTERM during a slow request lets it finish, /ready turns 503, and the process exits 0', async (t) => {
  const port = await freePort()
  // Shedding off: on a loaded test machine a slow turn would answer the slow request 503.
  const run = runCli(['serve'], {
    ...embedded(),
    PORT: String(port),
    SHUTDOWN_DELAY_MS: '300',
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  })
  t.after(stopOnExit(run))
  const base = `http://127.0.0.1:${port}`
  await waitForOk(`${base}/health`)

  // A request whose body arrives slowly stays in flight until the last byte is sent.
  const socket = connect(port, '127.0.0.1')
  // Listen for the close now: one that came before a late listener would leave the test waiting.
  const closed = new Promise((resolve) => socket.once('close', resolve))
  let reply = ''
  socket.on('data', (chunk) => {
    reply += chunk.toString()
  })
  const body = JSON.stringify({ probe: 'x'.repeat(100) })
  socket.write(
    `POST /slow-upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  )
  socket.write(body.slice(0, 10))
  await new Promise((resolve) => setTimeout(resolve, 100))

  run.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ready = await fetch(`${base}/ready`)
  assert.equal(ready.status, 503, 'readiness fails first while draining')

  await new Promise((resolve) => setTimeout(resolve, 400))
  socket.end(body.slice(10))
  await closed
  assert.match(reply, /^HTTP\/1\.1 404 /, 'the in-flight request got its answer')

  assert.equal(await run.exited, 0, run.output())
  assert.match(run.output(), /shutting down/)
})
