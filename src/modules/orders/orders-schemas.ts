import Type from 'typebox'
import { IdSchema, TimestampSchema } from '../../http/schemas.ts'

/** Why the job turned an order down. */
export const REJECTION_REASONS = ['insufficient_stock', 'item_not_found'] as const
export type RejectionReason = (typeof REJECTION_REASONS)[number]

const Status = Type.Union(
  [Type.Literal('pending'), Type.Literal('completed'), Type.Literal('rejected')],
  { description: 'pending until the background job has settled the order' },
)

/** What a client sends to place an order; anything else is dropped. */
export const OrderCreateSchema = Type.Object(
  { item_id: IdSchema, quantity: Type.Integer({ minimum: 1, maximum: 1000 }) },
  { additionalProperties: false },
)
export type OrderCreate = Type.Static<typeof OrderCreateSchema>

/**
 * The optional Idempotency-Key header: a client that retries a POST with the same key gets the
 * first order back instead of placing a second one.
 */
export const OrderCreateHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[\\x21-\\x7E]+$',
      description:
        'Up to 64 printable ASCII characters, unique per request you mean; a retry with the same key returns the first order',
    }),
  ),
})

/** The answer to POST /api/orders: the order as accepted. */
export const OrderAcceptedSchema = Type.Object(
  { id: IdSchema, item_id: IdSchema, quantity: Type.Integer(), status: Type.Literal('pending') },
  { description: 'The order, accepted: a background job deducts the stock' },
)
export type OrderAccepted = Type.Static<typeof OrderAcceptedSchema>

/** An order as its owner sees it. */
export const OrderPublicSchema = Type.Object(
  {
    id: IdSchema,
    item_id: IdSchema,
    quantity: Type.Integer(),
    status: Status,
    reason: Type.Optional(
      Type.Union([Type.Literal('insufficient_stock'), Type.Literal('item_not_found')], {
        description: 'set when rejected',
      }),
    ),
    created_at: TimestampSchema,
    updated_at: TimestampSchema,
  },
  { description: 'An order' },
)
export type OrderPublic = Type.Static<typeof OrderPublicSchema>

/** What is published on `orders:<id>` (and streamed by GET /api/orders/{id}/events). */
export interface OrderEvent {
  id: string
  status: OrderPublic['status']
  reason?: RejectionReason
  updated_at: string
}
