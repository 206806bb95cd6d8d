import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Readiness, redactSecrets } from './readiness.ts'

test('a failing check is reported without the credentials its error may carry', async () => {
  const readiness = new Readiness(500)
  readiness.add({
    name: 'database',
    check: async () => {
      throw new Error('cannot connect to postgres://app:s3cret-pw@db.internal:5432/app')
    },
  })
  readiness.add({
    name: 'cache',
    check: async () => {
      throw new Error('AUTH failed: password=hunter2, host=cache')
    },
  })
  readiness.add({ name: 'queue', check: async () => {} })
  const report = await readiness.report()
  assert.equal(report.isReady, false)
  assert.equal(report.checks.queue, 'ok')
  assert.equal(
    report.checks.database,
    'failing: cannot connect to postgres://***@db.internal:5432/app',
  )
  assert.equal(report.checks.cache, 'failing: AUTH failed: password=***, host=cache')
  assert.doesNotMatch(JSON.stringify(report), /s3cret|hunter2/)
})

test('redactSecrets keeps ordinary messages and bounds long ones', () => {
  assert.equal(
    redactSecrets('connect ECONNREFUSED 127.0.0.1:5432'),
    'connect ECONNREFUSED 127.0.0.1:5432',
  )
  assert.equal(
    redactSecrets("Access denied for user 'root'@'localhost' (using password: YES)"),
    "Access denied for user 'root'@'localhost' (using password: ***)",
  )
  assert.equal(redactSecrets('x'.repeat(500)).length, 201)
})
