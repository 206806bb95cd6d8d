import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseEnv } from 'node:util'
import { ConfigError, ConfigSchema, EXAMPLE_JWT_SECRET, loadConfig } from './index.ts'

const noFiles = { readFiles: false }

test('with nothing set, the embedded defaults apply', () => {
  const config = loadConfig({}, noFiles)
  assert.equal(config.HOST, '127.0.0.1')
  assert.equal(config.PORT, 8000)
  assert.equal(config.APP_ENV, 'local')
  assert.equal(config.DATABASE_URL, 'sqlite:./data/servekit.db')
  assert.equal(config.REDIS_URL, undefined)
  assert.ok(Object.isFrozen(config))
})

test('strings from the environment become typed values', () => {
  const config = loadConfig({ PORT: '9001', APP_DEBUG: 'true', DB_POOL_SIZE: '3' }, noFiles)
  assert.equal(config.PORT, 9001)
  assert.equal(config.APP_DEBUG, true)
  assert.equal(config.DB_POOL_SIZE, 3)
})

test('a bad value fails naming the key, the value and the expected form', () => {
  assert.throws(() => loadConfig({ PORT: 'abc' }, noFiles), {
    name: 'ConfigError',
    message: 'PORT="abc" is invalid: expected an integer from 0 to 65535',
  })
  assert.throws(() => loadConfig({ PORT: '70000' }, noFiles), /PORT="70000"/)
  assert.throws(
    () => loadConfig({ APP_ENV: 'staging' }, noFiles),
    /APP_ENV="staging" is invalid: expected one of local, dev, test, prod/,
  )
  assert.throws(() => loadConfig({ DATABASE_URL: 'oracle://x' }, noFiles), /DATABASE_URL/)
})

test('the value of a secret key is never echoed in an error', () => {
  assert.throws(
    () => loadConfig({ JWT_SECRET: 'hunter2-too-short' }, noFiles),
    (error: Error) =>
      error.message.includes('JWT_SECRET=(value hidden)') && !error.message.includes('hunter2'),
  )
  assert.throws(
    () => loadConfig({ REDIS_URL: 'http://user:pw-x@host' }, noFiles),
    (error: Error) =>
      error.message.startsWith('REDIS_URL=(value hidden)') && !error.message.includes('pw-x'),
  )
})

test('prod refuses to start without a JWT secret of its own', () => {
  assert.throws(() => loadConfig({ APP_ENV: 'prod' }, noFiles), ConfigError)
  assert.throws(
    () => loadConfig({ APP_ENV: 'prod', JWT_SECRET: EXAMPLE_JWT_SECRET }, noFiles),
    /JWT_SECRET/,
  )
  const config = loadConfig({ APP_ENV: 'prod', JWT_SECRET: 'x'.repeat(40) }, noFiles)
  assert.equal(config.APP_ENV, 'prod')
})

test('the environment wins over configs/.env.<APP_ENV>, which wins over .env', () => {
  const dir = mkdtempSync(join(tmpdir(), 'servekit-config-'))
  mkdirSync(join(dir, 'configs'))
  writeFileSync(join(dir, '.env'), 'APP_ENV=dev\nPORT=7000\nAPP_NAME=from-dotenv\nLOG_LEVEL=warn\n')
  writeFileSync(join(dir, 'configs/.env.dev'), 'PORT=7001\nAPP_NAME=from-dev\n')
  const config = loadConfig({ APP_NAME: 'from-process' }, { cwd: dir })
  assert.equal(config.APP_ENV, 'dev')
  assert.equal(config.PORT, 7001)
  assert.equal(config.APP_NAME, 'from-process')
  assert.equal(config.LOG_LEVEL, 'warn')
})

test('.env.example lists every key, each with a comment, and loads as valid config', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const example = parseEnv(text)
  const keys = Object.keys(ConfigSchema.properties)
  assert.deepEqual(Object.keys(example).sort(), [...keys].sort())
  for (const key of keys)
    assert.match(text, new RegExp(`# .+\\n#?${key}=`), `${key} has a one-line meaning`)
  assert.doesNotThrow(() => loadConfig(example, noFiles))
})
