import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError, loadConfig } from './index.ts'

const noFiles = { readFiles: false }

test('prod refuses an HMAC secret shorter than 32 bytes, without echoing it', () => {
  const secret = 's3cr3t-'.padEnd(31, 'x')
  assert.throws(
    () => loadConfig({ APP_ENV: 'prod', JWT_SECRET: secret }, noFiles),
    (error: Error) =>
      error instanceof ConfigError &&
      error.message.startsWith('JWT_SECRET=(value hidden) is invalid') &&
      error.message.includes('at least 32') &&
      !error.message.includes(secret),
  )
  const config = loadConfig({ APP_ENV: 'prod', JWT_SECRET: secret.padEnd(32, 'y') }, noFiles)
  assert.equal(config.JWT_SECRET.length, 32)
})

test('the 32 minimum holds in every environment, and counts no fewer than 32 bytes', () => {
  for (const APP_ENV of ['local', 'dev', 'test', 'prod'])
    assert.throws(() => loadConfig({ APP_ENV, JWT_SECRET: 'x'.repeat(31) }, noFiles), /JWT_SECRET/)
  // The schema counts characters; each is at least one byte in UTF-8, so 32 characters are never
  // fewer than 32 bytes. 16 two-byte characters (32 bytes) are refused: stricter, never looser.
  assert.throws(() => loadConfig({ JWT_SECRET: 'é'.repeat(16) }, noFiles), /JWT_SECRET/)
})
