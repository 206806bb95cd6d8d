import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dialectCases, openTestDatabase } from '../../../test/helpers/db.ts'
import {
  createItemsRepository,
  type ItemsRepository,
  type NewItem,
} from '../../modules/items/items-repository.ts'
import { createUsersRepository } from '../../modules/users/users-repository.ts'
import { createSnowflake, parseSnowflake } from '../../shared/ids/index.ts'
import { isUniqueViolation } from './index.ts'

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** One contract, three databases: what passes here behaves the same on each. */
for (const { dialect, options } of await dialectCases()) {
  test(`repository contract on ${dialect}`, options, async (t) => {
    const { handle } = await openTestDatabase(t, dialect)
    let clockMs = Date.UTC(2026, 0, 2, 3, 4, 5, 678)
    const deps = {
      db: handle.db,
      ids: createSnowflake({ workerId: 7 }),
      now: () => new Date(clockMs),
    }
    const items = createItemsRepository(deps)
    const users = createUsersRepository(deps)
    const newOwner = () => deps.ids.nextId()
    const lamp = (overrides: Partial<NewItem> = {}): NewItem => ({
      name: 'Lamp',
      price: 19.99,
      description: 'bright',
      stock: 3,
      ...overrides,
    })

    await t.test(
      'insert gives a snowflake id string, creator, updater and ISO timestamps',
      async () => {
        const owner = newOwner()
        const item = await items.create(lamp(), owner)
        assert.match(item.id, /^\d+$/)
        assert.ok(BigInt(item.id) > BigInt(Number.MAX_SAFE_INTEGER), 'beyond what a number holds')
        assert.equal(parseSnowflake(item.id).workerId, 7)
        assert.equal(item.creator_id, owner)
        assert.equal(item.updater_id, owner)
        assert.equal(item.created_at, '2026-01-02T03:04:05.678Z')
        assert.equal(item.updated_at, item.created_at)
        assert.equal(item.deleted_at, null)
        assert.deepEqual(
          { name: item.name, price: item.price, description: item.description, stock: item.stock },
          { name: 'Lamp', price: 19.99, description: 'bright', stock: 3 },
        )
        assert.deepEqual(await items.findById(item.id), item, 'read back exactly as written')
      },
    )

    await t.test('ids and timestamps read back as strings on every path', async () => {
      const item = await items.create(lamp(), newOwner())
      const [listed] = await items.list({ where: { id: item.id } })
      const [byIds] = await items.findByIds([item.id])
      for (const row of [item, listed, byIds]) {
        assert.equal(typeof row?.id, 'string')
        assert.equal(typeof row?.creator_id, 'string')
        assert.match(String(row?.created_at), ISO_UTC)
        assert.match(String(row?.updated_at), ISO_UTC)
        assert.equal(typeof row?.price, 'number')
        assert.equal(typeof row?.stock, 'number')
      }
      assert.equal(Object.getPrototypeOf(listed), Object.prototype, 'plain objects')
    })

    await t.test('soft delete hides the row; withDeleted shows it with deleted_at', async () => {
      const owner = newOwner()
      const item = await items.create(lamp(), owner)
      const deleter = newOwner()
      clockMs += 1000
      assert.equal(await items.softDelete(item.id, deleter), true)
      assert.equal(await items.softDelete(item.id, deleter), false, 'already deleted')
      assert.equal(await items.findById(item.id), undefined)
      assert.deepEqual(await items.findByIds([item.id]), [])
      assert.equal(await items.count({ creatorId: owner }), 0)
      assert.deepEqual((await items.paginate(1, 10, { creatorId: owner })).total, 0)
      assert.equal(await items.update(item.id, { stock: 9 }, owner), undefined, 'not updatable')

      const deleted = await items.findById(item.id, { withDeleted: true })
      assert.equal(deleted?.deleted_at, '2026-01-02T03:04:06.678Z')
      assert.equal(deleted?.updater_id, deleter)
      assert.equal(await items.count({ creatorId: owner, withDeleted: true }), 1)
    })

    await t.test('reads and writes scoped to a creator ignore other creators’ rows', async () => {
      const owner = newOwner()
      const stranger = newOwner()
      const item = await items.create(lamp(), owner)
      assert.equal(await items.findById(item.id, { creatorId: stranger }), undefined)
      assert.equal((await items.findById(item.id, { creatorId: owner }))?.id, item.id)
      assert.equal(
        await items.update(item.id, { stock: 0 }, stranger, { creatorId: stranger }),
        undefined,
      )
      assert.equal(await items.softDelete(item.id, stranger, { creatorId: stranger }), false)
      assert.equal((await items.findById(item.id))?.stock, 3, 'unchanged')
    })

    await t.test('filters: equals, not equals, in, not in, ranges and null', async () => {
      const owner = newOwner()
      const made = []
      for (const [index, price] of [5, 10, 15, 20, 25].entries()) {
        clockMs += 1000
        made.push(
          await items.create(
            lamp({ name: `F${index}`, price, description: index === 0 ? null : 'x' }),
            owner,
          ),
        )
      }
      const names = async (where: Parameters<ItemsRepository['list']>[0]) =>
        (await items.list({ creatorId: owner, orderBy: [['price', 'asc']], ...where })).map(
          (row) => row.name,
        )
      assert.deepEqual(await names({ where: { name: 'F2' } }), ['F2'])
      assert.deepEqual(await names({ where: { name: { ne: 'F2' } } }), ['F0', 'F1', 'F3', 'F4'])
      assert.deepEqual(await names({ where: { name: { in: ['F1', 'F3', 'nope'] } } }), ['F1', 'F3'])
      assert.deepEqual(await names({ where: { name: { in: [] } } }), [])
      assert.deepEqual(await names({ where: { name: { notIn: ['F0', 'F4'] } } }), [
        'F1',
        'F2',
        'F3',
      ])
      assert.deepEqual(await names({ where: { price: { gte: 10, lte: 20 } } }), ['F1', 'F2', 'F3'])
      assert.deepEqual(await names({ where: { price: { gt: 10, lt: 20 } } }), ['F2'])
      assert.deepEqual(await names({ where: { description: null } }), ['F0'])
      assert.deepEqual(await names({ where: { description: { ne: null } } }), [
        'F1',
        'F2',
        'F3',
        'F4',
      ])
      const [, second, , fourth] = made
      assert.deepEqual(
        await names({
          where: {
            created_at: {
              gte: new Date(String(second?.created_at)),
              lte: new Date(String(fourth?.created_at)),
            },
          },
        }),
        ['F1', 'F2', 'F3'],
        'timestamp ranges compare as instants',
      )
      assert.deepEqual(
        await names({ where: { id: { in: [String(second?.id), String(fourth?.id)] } } }),
        ['F1', 'F3'],
      )
      assert.equal(await items.count({ creatorId: owner, where: { price: { gt: 12 } } }), 3)
    })

    await t.test('paginate returns pages newest first with the total', async () => {
      const owner = newOwner()
      const created = []
      for (let index = 0; index < 25; index++)
        created.push(await items.create(lamp({ name: `P${index}` }), owner))
      const pages = await Promise.all(
        [1, 2, 3, 4].map((page) => items.paginate(page, 10, { creatorId: owner })),
      )
      assert.deepEqual(
        pages.map((page) => page.rows.length),
        [10, 10, 5, 0],
      )
      for (const page of pages) assert.equal(page.total, 25)
      const seen = pages.flatMap((page) => page.rows.map((row) => row.name))
      assert.deepEqual(seen, created.map((row) => row.name).reverse())
      const cheapest = await items.paginate(1, 2, {
        creatorId: owner,
        orderBy: [['name', 'asc']],
      })
      assert.deepEqual(
        cheapest.rows.map((row) => row.name),
        ['P0', 'P1'],
      )
      await assert.rejects(items.paginate(0, 10), RangeError)
    })

    await t.test('update changes the fields and stamps updater_id and updated_at', async () => {
      const owner = newOwner()
      const item = await items.create(lamp(), owner)
      const editor = newOwner()
      clockMs += 60_000
      const updated = await items.update(
        item.id,
        { name: 'Desk lamp', price: 1.005, description: null },
        editor,
      )
      assert.equal(updated?.name, 'Desk lamp')
      assert.equal(updated?.price, 1.01, 'rounded to cents the same way everywhere')
      assert.equal(updated?.description, null)
      assert.equal(updated?.stock, 3, 'untouched fields stay')
      assert.equal(updated?.updater_id, editor)
      assert.equal(updated?.updated_at, new Date(clockMs).toISOString())
      assert.equal(updated?.creator_id, owner, 'the creator stays')
      assert.equal(updated?.created_at, item.created_at)
      assert.deepEqual(await items.findById(item.id), updated)
      assert.deepEqual(
        await items.update(item.id, { name: 'Desk lamp' }, editor),
        updated,
        'an update that changes nothing still finds the row',
      )
      assert.equal(await items.update('1', { stock: 1 }, editor), undefined, 'unknown id')
    })

    await t.test('base fields passed at run time are ignored, not written', async () => {
      const sneaky = { ...lamp(), id: '1', creator_id: '2', deleted_at: new Date() }
      const item = await items.create(sneaky, '3')
      assert.notEqual(item.id, '1')
      assert.equal(item.creator_id, '3')
      assert.equal(item.deleted_at, null)
    })

    await t.test('a failing transaction rolls back every write in it', async () => {
      const owner = newOwner()
      await assert.rejects(
        items.transaction(async (tx) => {
          const item = await tx.create(lamp({ name: 'rolled back' }), owner)
          await tx.update(item.id, { stock: 99 }, owner)
          assert.equal((await tx.findById(item.id))?.stock, 99, 'visible inside')
          throw new Error('boom')
        }),
        /boom/,
      )
      assert.equal(await items.count({ creatorId: owner }), 0)

      const kept = await items.transaction(async (tx) => {
        const first = await tx.create(lamp({ name: 'kept 1' }), owner)
        // A nested transaction joins the open one.
        await tx.transaction((inner) => inner.create(lamp({ name: 'kept 2' }), owner))
        return first
      })
      assert.equal(await items.count({ creatorId: owner }), 2)
      assert.equal((await items.findById(kept.id))?.name, 'kept 1')
    })

    await t.test('insertMany writes all rows in multi-row batches', async () => {
      const owner = newOwner()
      const rows = Array.from({ length: 2500 }, (_, index) => lamp({ name: `M${index}` }))
      assert.equal(await items.insertMany(rows, owner), 2500)
      assert.equal(await items.count({ creatorId: owner }), 2500)
      const sample = await items.list({ creatorId: owner, where: { name: 'M2499' } })
      assert.equal(sample[0]?.creator_id, owner)
    })

    await t.test('text keeps emoji and accents; comparisons are case-sensitive', async () => {
      const owner = newOwner()
      const item = await items.create(lamp({ name: 'Café ☕ 🚀', description: 'ÀÉÎ' }), owner)
      assert.equal((await items.findById(item.id))?.name, 'Café ☕ 🚀')
      await items.create(lamp({ name: 'lamp' }), owner)
      assert.deepEqual(
        (await items.list({ creatorId: owner, where: { name: 'Lamp' } })).map((row) => row.name),
        [],
      )
    })

    await t.test('users: create, find by username, a taken name gives undefined', async () => {
      const created = await users.create({ username: 'alice', password_hash: '$2b$04$hash' })
      assert.ok(created)
      assert.equal(created.username, 'alice')
      assert.equal(created.creator_id, null)
      assert.deepEqual(await users.findByUsername('alice'), created)
      assert.equal(await users.findByUsername('nobody'), undefined)
      assert.equal(await users.create({ username: 'alice', password_hash: 'x' }), undefined)
      const other = await users.create({ username: 'Alice', password_hash: 'x' })
      assert.ok(other, 'usernames are case-sensitive on every dialect')

      const error = await handle.db
        .insertInto('users')
        .values({
          ...created,
          id: deps.ids.nextId(),
          created_at: new Date(),
          updated_at: new Date(),
          deleted_at: null,
        })
        .execute()
        .catch((caught: unknown) => caught)
      assert.equal(isUniqueViolation(error), true)
      assert.equal(isUniqueViolation(new Error('other')), false)
    })
  })
}

test('wrong columns and value types fail the type check (tsc checks this file)', () => {
  const typeOnly = (_check: (items: ItemsRepository) => unknown) => {}
  // @ts-expect-error: no such column
  typeOnly((items) => items.list({ where: { nmae: 'Lamp' } }))
  // @ts-expect-error: price is a number
  typeOnly((items) => items.list({ where: { price: { gte: 'cheap' } } }))
  // @ts-expect-error: no such column to order by
  typeOnly((items) => items.list({ orderBy: [['colour', 'asc']] }))
  // @ts-expect-error: stock is a number
  typeOnly((items) => items.update('1', { stock: 'many' }, null))
  // @ts-expect-error: name is required
  typeOnly((items) => items.create({ price: 1 }, null))
  // @ts-expect-error: base fields are set by the repository, not the caller
  typeOnly((items) => items.update('1', { updater_id: '2' }, null))
  typeOnly((items) => items.list({ where: { price: { gte: 1 }, created_at: { lt: new Date() } } }))
})
