import Type from 'typebox'
import { IdSchema, TimestampSchema } from '../../http/schemas.ts'

const Name = Type.String({ minLength: 1, maxLength: 255 })
const Price = Type.Number({ exclusiveMinimum: 0, maximum: 1e12 })
// One schema with two types, not a union: with coerceTypes, Ajv tries the union's string branch
// first and turns null into "", so a client that sent null would find "" stored.
const Description = Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 10_000 })
const Stock = Type.Integer({ minimum: 0, maximum: 2_147_483_647 })

/** An item as clients see it. */
export const ItemPublicSchema = Type.Object(
  {
    id: IdSchema,
    name: Type.String(),
    price: Type.Number(),
    description: Type.Union([Type.String(), Type.Null()]),
    stock: Type.Integer(),
    creator_id: Type.Union([IdSchema, Type.Null()]),
    created_at: TimestampSchema,
    updated_at: Type.Union([TimestampSchema, Type.Null()]),
  },
  { description: 'An item' },
)
export type ItemPublic = Type.Static<typeof ItemPublicSchema>

/** What a client may send to create an item; anything else (id, creator_id, …) is dropped. */
export const ItemCreateSchema = Type.Object(
  { name: Name, price: Price, description: Type.Optional(Description), stock: Stock },
  { additionalProperties: false },
)
export type ItemCreate = Type.Static<typeof ItemCreateSchema>

/** A partial update: at least one field. */
export const ItemUpdateSchema = Type.Object(
  {
    name: Type.Optional(Name),
    price: Type.Optional(Price),
    description: Type.Optional(Description),
    stock: Type.Optional(Stock),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type ItemUpdate = Type.Static<typeof ItemUpdateSchema>

export const ItemPageQuerySchema = Type.Object({
  page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
})

export const ItemPageSchema = Type.Object(
  {
    items: Type.Array(ItemPublicSchema),
    total: Type.Integer(),
    page: Type.Integer(),
    limit: Type.Integer(),
  },
  { description: 'A page of items and the total' },
)
export type ItemPage = Type.Static<typeof ItemPageSchema>
