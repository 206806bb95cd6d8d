import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { createDatabase } from '../../src/infra/db/index.ts'
import { testConfig } from '../helpers/app.ts'
import { createTestDatabase, dialectCases } from '../helpers/db.ts'
import { runCli } from '../helpers/process.ts'

const STEPS = ['0001_create_users_and_items', '0002_create_orders', '0003_create_outbox']

async function cli(args: string[], env: Record<string, string>) {
  const run = runCli(args, { APP_ENV: 'test', LOG_LEVEL: 'warn', ...env })
  const code = await run.exited
  return { code, output: run.output() }
}

for (const { dialect, options } of await dialectCases()) {
  test(
    `on ${dialect}: migrate up, status, seed --count 10000, migrate down --all`,
    options,
    async (t) => {
      const env = { DATABASE_URL: await createTestDatabase(t, dialect, { isMigrated: false }) }

      const up = await cli(['migrate', 'up'], env)
      assert.equal(up.code, 0, up.output)
      for (const step of STEPS) assert.match(up.output, new RegExp(`^applied {2}${step}$`, 'm'))
      assert.match(up.output, new RegExp(`^${dialect}: 3 steps applied$`, 'm'))

      const status = await cli(['migrate', 'status'], env)
      assert.equal(status.code, 0, status.output)
      for (const step of STEPS)
        assert.match(status.output, new RegExp(`^applied {2}${step} {2}\\d{4}-\\d\\d-\\d\\dT`, 'm'))
      assert.match(status.output, /3 of 3 steps applied/)

      const seed = await cli(['seed', '--count', '10000'], env)
      assert.equal(seed.code, 0, seed.output)
      const [, ms] =
        seed.output.match(new RegExp(`^${dialect}: seeded 10000 items in (\\d+) ms$`, 'm')) ?? []
      assert.ok(ms, seed.output)
      t.diagnostic(`${dialect}: seed --count 10000 took ${ms} ms`)
      const handle = createDatabase(testConfig(env), pino({ level: 'silent' }))
      const live = await handle.db
        .selectFrom('items')
        .where('deleted_at', 'is', null)
        .select((eb) => eb.fn.countAll().as('count'))
        .executeTakeFirstOrThrow()
      await handle.close()
      assert.equal(Number(live.count), 10_000, 'the database holds 10,000 live items')

      const down = await cli(['migrate', 'down', '--all'], env)
      assert.equal(down.code, 0, down.output)
      for (const step of STEPS) assert.match(down.output, new RegExp(`^reverted {2}${step}$`, 'm'))

      const after = await cli(['migrate', 'status'], env)
      assert.match(after.output, /0 of 3 steps applied/)
    },
  )
}

test('migrate without an action, or seed with a bad count, exits 2 with the usage', async () => {
  const env = { DATABASE_URL: await createTestDatabase({ after: () => {} }, 'sqlite') }
  const noAction = await cli(['migrate'], env)
  assert.equal(noAction.code, 2)
  assert.match(noAction.output, /migrate needs an action: up, down or status/)
  assert.match(noAction.output, /Usage: servekit/)
  const badAction = await cli(['migrate', 'sideways'], env)
  assert.equal(badAction.code, 2)
  assert.match(badAction.output, /unknown migrate action: sideways/)
  const badCount = await cli(['seed', '--count', '0'], env)
  assert.equal(badCount.code, 2)
  assert.match(badCount.output, /--count="0" is invalid/)
})
