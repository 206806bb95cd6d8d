import type { Writable } from 'node:stream'
import type { Config } from '../config/index.ts'
import { createContainer } from '../container/index.ts'
import type { RepositoryDeps } from '../infra/db/index.ts'
import { createItemsRepository, type NewItem } from '../modules/items/items-repository.ts'
import { createUsersRepository } from '../modules/users/users-repository.ts'

export interface SeedOptions {
  /** Demo items to insert. */
  count: number
  out?: Writable
}

/** The owner of demo items. Its password hash matches no password, so nobody logs in as it. */
export const DEMO_USERNAME = 'demo'
const UNUSABLE_PASSWORD_HASH = '!'
/** Rows committed per transaction: large enough to be fast, small enough not to hold locks long. */
const ROWS_PER_TRANSACTION = 10_000

/** `seed --count N`: inserts N demo items owned by the demo user, in multi-row batches. */
export async function seed(config: Readonly<Config>, options: SeedOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const container = await createContainer(config, { runsEmbeddedWorkers: false })
  try {
    const startedMs = performance.now()
    const inserted = await seedItems({ db: container.db.db, ids: container.ids }, options.count)
    const elapsedMs = Math.round(performance.now() - startedMs)
    out.write(`${container.db.dialect}: seeded ${inserted} items in ${elapsedMs} ms\n`)
    container.logger.system.info({ inserted, elapsedMs }, 'seeded demo items')
    return 0
  } finally {
    await container.close()
  }
}

/** Inserts `count` demo items (and the demo user, once); resolves to the number inserted. */
export async function seedItems(deps: RepositoryDeps, count: number): Promise<number> {
  const users = createUsersRepository(deps)
  const owner =
    (await users.findByUsername(DEMO_USERNAME)) ??
    (await users.create({ username: DEMO_USERNAME, password_hash: UNUSABLE_PASSWORD_HASH })) ??
    (await users.findByUsername(DEMO_USERNAME))
  if (!owner) throw new Error(`the ${DEMO_USERNAME} user could not be created`)

  const items = createItemsRepository(deps)
  let inserted = 0
  while (inserted < count) {
    const size = Math.min(ROWS_PER_TRANSACTION, count - inserted)
    const batch: NewItem[] = Array.from({ length: size }, (_, index) => demoItem(inserted + index))
    // One transaction per call, holding multi-row INSERTs of up to 1,000 rows each.
    inserted += await items.insertMany(batch, owner.id)
  }
  return inserted
}

const ADJECTIVES = ['Compact', 'Sturdy', 'Bright', 'Quiet', 'Smart', 'Classic', 'Handmade', 'Tiny']
const NOUNS = ['Lamp', 'Chair', 'Kettle', 'Backpack', 'Notebook', 'Speaker', 'Mug', 'Clock']

function demoItem(n: number): NewItem {
  const name = `${ADJECTIVES[n % ADJECTIVES.length]} ${NOUNS[Math.floor(n / ADJECTIVES.length) % NOUNS.length]} #${n + 1}`
  return {
    name,
    price: 1 + Math.floor(Math.random() * 99_900) / 100,
    description: `Demo item ${n + 1}, made by the seed command.`,
    stock: Math.floor(Math.random() * 100),
  }
}
