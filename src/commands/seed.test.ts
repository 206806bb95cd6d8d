import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dialectCases, openTestDatabase } from '../../test/helpers/db.ts'
import { createItemsRepository } from '../modules/items/items-repository.ts'
import { createUsersRepository } from '../modules/users/users-repository.ts'
import { createSnowflake } from '../shared/ids/index.ts'
import { DEMO_USERNAME, seedItems } from './seed.ts'

for (const { dialect, options } of await dialectCases()) {
  test(`seeding 10,000 items on ${dialect} leaves 10,000 live items`, options, async (t) => {
    const { handle } = await openTestDatabase(t, dialect)
    const deps = { db: handle.db, ids: createSnowflake({ workerId: 1 }) }
    const startedMs = performance.now()
    assert.equal(await seedItems(deps, 10_000), 10_000)
    t.diagnostic(`${dialect}: 10,000 items in ${Math.round(performance.now() - startedMs)} ms`)

    const items = createItemsRepository(deps)
    const owner = await createUsersRepository(deps).findByUsername(DEMO_USERNAME)
    assert.ok(owner, 'the demo user owns them')
    assert.equal(await items.count(), 10_000)
    assert.equal(await items.count({ creatorId: owner.id }), 10_000)
    const { rows, total } = await items.paginate(1, 5)
    assert.equal(total, 10_000)
    for (const row of rows) {
      assert.ok(row.price >= 1 && row.price < 1000)
      assert.equal(Math.round(row.price * 100) / 100, row.price, 'whole cents')
    }

    assert.equal(await seedItems(deps, 5), 5, 'a second run adds, reusing the demo user')
    assert.equal(await items.count(), 10_005)
  })
}
