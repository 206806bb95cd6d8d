import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { scratchDir } from '../../../test/helpers/app.ts'
import { loadConfig } from '../../config/index.ts'
import { runWithContext } from '../../shared/request-context.ts'
import { createLoggers } from './index.ts'

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, stream }
}

const settings = (env: Record<string, string> = {}) =>
  loadConfig(
    { APP_ENV: 'prod', JWT_SECRET: 'x'.repeat(40), LOG_LEVEL: 'info', ...env },
    { readFiles: false },
  )

test('JSON lines carry a UTC ISO timestamp, the app and the logger type', async () => {
  const { lines, stream } = capture()
  const loggers = createLoggers(settings(), stream)
  loggers.business.info({ order_id: '7' }, 'order placed')
  await loggers.close()
  const [line] = lines
  assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.equal(line?.logger, 'business')
  assert.equal(line?.app, 'servekit')
  assert.equal(line?.msg, 'order placed')
})

test('authorization headers, cookies, passwords and tokens are redacted', async () => {
  const { lines, stream } = capture()
  const loggers = createLoggers(settings(), stream)
  loggers.system.info({
    req: { headers: { authorization: 'Bearer eyJsecret', cookie: 'session=abc' } },
    user: { password: 'hunter2-hunter2', password_hash: '$2b$12$abc' },
    access_token: 'tok-123',
  })
  await loggers.close()
  const text = JSON.stringify(lines)
  for (const secret of ['eyJsecret', 'session=abc', 'hunter2', '$2b$12$abc', 'tok-123']) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`)
  }
  assert.match(text, /\[redacted\]/)
})

test('a line logged inside a request context carries its request id', async () => {
  const { lines, stream } = capture()
  const loggers = createLoggers(settings(), stream)
  runWithContext({ requestId: 'req-42' }, () => loggers.business.info('inside'))
  loggers.business.info('outside')
  await loggers.close()
  assert.equal(lines[0]?.req_id, 'req-42')
  assert.equal(lines[1]?.req_id, undefined)
})

test('with LOG_DIR, each logger type writes its own file', async () => {
  const dir = scratchDir()
  const { stream } = capture()
  const loggers = createLoggers(settings({ LOG_DIR: dir, LOG_ROTATE: '10M' }), stream)
  loggers.access.info({ status: 200 }, 'served')
  loggers.business.info('did business')
  await loggers.close()
  const accessFile = join(dir, 'servekit-access.log')
  assert.ok(existsSync(accessFile))
  assert.match(readFileSync(accessFile, 'utf8'), /"status":200/)
  assert.match(readFileSync(join(dir, 'servekit-business.log'), 'utf8'), /did business/)
  assert.doesNotMatch(readFileSync(accessFile, 'utf8'), /did business/)
})
