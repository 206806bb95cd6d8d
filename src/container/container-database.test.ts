import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { testConfig } from '../../test/helpers/app.ts'
import { createDatabase, migrationStatus } from '../infra/db/index.ts'
import { parseSnowflake } from '../shared/ids/index.ts'
import { createContainer } from './index.ts'

test('embedded mode opens SQLite, migrates it at start-up and reports it ready', async () => {
  const config = testConfig()
  const container = await createContainer(config)
  try {
    assert.equal(container.db.dialect, 'sqlite')
    const steps = await migrationStatus(container.db)
    assert.ok(steps.length > 0 && steps.every((step) => step.appliedAt), 'every step applied')
    assert.deepEqual(await container.readiness.report(), {
      isReady: true,
      checks: { database: 'ok', cache: 'ok' },
    })
    assert.match(container.ids.nextId(), /^\d+$/)
  } finally {
    await container.close()
  }
  await assert.rejects(container.db.ping(), Error, 'closed with the container')
})

test('with isMigratingAtStart false, the container leaves the schema alone', async () => {
  const config = testConfig()
  const container = await createContainer(config, { isMigratingAtStart: false })
  try {
    assert.ok((await migrationStatus(container.db)).every((step) => !step.appliedAt))
  } finally {
    await container.close()
  }
})

test('a database that cannot be reached fails start-up, naming it', async () => {
  const config = testConfig({
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    DB_CONNECT_TIMEOUT_MS: '500',
  })
  await assert.rejects(
    createContainer(config),
    /cannot reach the postgres database: .*ECONNREFUSED/,
  )
})

test('the worker id for ids comes from the config', async () => {
  const config = testConfig({ POD_NAME: 'api-5' })
  const container = await createContainer(config)
  try {
    assert.equal(parseSnowflake(container.ids.nextId()).workerId, 5)
  } finally {
    await container.close()
  }
})

test('createDatabase alone never migrates: only the container decides that', async () => {
  const bare = createDatabase(testConfig(), pino({ level: 'silent' }))
  assert.deepEqual(await bare.db.introspection.getTables(), [])
  await bare.close()
})
