import type { Cache } from '../../infra/cache/cache.ts'
import { singleFlight } from '../../shared/single-flight.ts'
import { itemForbidden, itemNotFound } from './items-errors.ts'
import type { ItemCreate, ItemPage, ItemPublic, ItemUpdate } from './items-schemas.ts'

/** An item row as the store returns it (ids as decimal strings, timestamps as ISO strings). */
export interface ItemRecord {
  id: string
  name: string
  price: number
  description: string | null
  stock: number
  creator_id: string | null
  created_at: string
  updated_at: string | null
}

/** The storage this service needs; the items repository provides it. */
export interface ItemsStore {
  findById(id: string): Promise<ItemRecord | undefined>
  paginate(page: number, limit: number): Promise<{ rows: ItemRecord[]; total: number }>
  create(values: ItemCreate, creatorId: string): Promise<ItemRecord>
  update(id: string, values: ItemUpdate, updaterId: string): Promise<ItemRecord | undefined>
  softDelete(id: string, updaterId: string): Promise<boolean>
}

export interface ItemsServiceDeps {
  items: ItemsStore
  cache: Cache
  cacheTtlSeconds: number
  /** Called when the cache fails; reads then go to the database. */
  onCacheError?: (error: unknown) => void
}

export type ItemsService = ReturnType<typeof createItemsService>

/**
 * Item rules: anyone reads; only the creator changes or deletes. Single items are read through
 * the cache as their public JSON; a change or delete drops the cached copy.
 */
export function createItemsService({
  items,
  cache,
  cacheTtlSeconds,
  onCacheError,
}: ItemsServiceDeps) {
  const keyOf = (id: string) => `item:${id}`
  // Concurrent misses of one item share a single database read.
  const loads = singleFlight<string>()

  async function ownedItem(id: string, userId: string): Promise<ItemRecord> {
    const item = await items.findById(id)
    if (!item) throw itemNotFound()
    if (item.creator_id !== userId) throw itemForbidden()
    return item
  }

  async function forget(id: string): Promise<void> {
    try {
      await cache.delete(keyOf(id))
    } catch (error) {
      onCacheError?.(error)
    }
  }

  return {
    async list(page: number, limit: number): Promise<ItemPage> {
      const { rows, total } = await items.paginate(page, limit)
      return { items: rows.map(toPublic), total, page, limit }
    },

    /** The item's public JSON, from the cache when present. */
    async getJson(id: string): Promise<string> {
      const key = keyOf(id)
      try {
        const cached = await cache.get(key)
        if (cached !== undefined) return cached
      } catch (error) {
        onCacheError?.(error)
      }
      return loads.run(key, async () => {
        const item = await items.findById(id)
        if (!item) throw itemNotFound()
        const json = JSON.stringify(toPublic(item))
        cache.set(key, json, cacheTtlSeconds).catch((error: unknown) => onCacheError?.(error))
        return json
      })
    },

    async create(input: ItemCreate, userId: string): Promise<ItemPublic> {
      return toPublic(
        await items.create({ ...input, description: input.description ?? null }, userId),
      )
    },

    async update(id: string, patch: ItemUpdate, userId: string): Promise<ItemPublic> {
      await ownedItem(id, userId)
      const updated = await items.update(id, patch, userId)
      if (!updated) throw itemNotFound()
      await forget(id)
      return toPublic(updated)
    },

    async remove(id: string, userId: string): Promise<void> {
      await ownedItem(id, userId)
      if (!(await items.softDelete(id, userId))) throw itemNotFound()
      await forget(id)
    },

    /** Drops the cached copy of an item changed elsewhere (an order's stock deduction). */
    forget,
  }
}

/** Exactly the public fields, in a stable order (the cached JSON is served as stored). */
function toPublic(item: ItemRecord): ItemPublic {
  return {
    id: item.id,
    name: item.name,
    price: item.price,
    description: item.description,
    stock: item.stock,
    creator_id: item.creator_id,
    created_at: item.created_at,
    updated_at: item.updated_at,
  }
}
