import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { type Authenticated, principalOf } from '../../http/plugins/authenticate.ts'
import type { SseStreams } from '../../http/realtime/sse.ts'
import { BEARER, errorResponses, IdParamsSchema } from '../../http/schemas.ts'
import {
  OrderAcceptedSchema,
  OrderCreateHeadersSchema,
  OrderCreateSchema,
  OrderPublicSchema,
} from './orders-schemas.ts'
import { type OrdersService, orderChannel } from './orders-service.ts'

export interface OrdersRoutesOptions {
  orders: OrdersService
  /** preHandlers that admit only signed-in users (and apply the per-user rate limit). */
  authenticated: Authenticated
  /** The server's SSE streams; GET /api/orders/{id}/events streams through them. */
  sse: SseStreams
}

const EventStreamResponse = {
  description:
    'A text/event-stream: one event per status change, data `{"id","status","reason"?,"updated_at"}`; the history is replayed first',
  content: { 'text/event-stream': { schema: Type.String() } },
}

/** /api/orders: place an order (settled in the background), read it, stream its changes. */
export const ordersRoutes: FastifyPluginAsyncTypebox<OrdersRoutesOptions> = async (
  app,
  { orders, authenticated, sse },
) => {
  const tags = ['orders']

  app.post(
    '/api/orders',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Place an order; the stock is deducted by a background job',
        description:
          'Answers 202 at once with the order pending; GET /api/orders/{id} (or its events) shows ' +
          'it completed, or rejected with a reason (insufficient_stock, item_not_found). A repeated ' +
          'Idempotency-Key answers the first order again (Idempotent-Replayed: true) and places nothing.',
        security: BEARER,
        headers: OrderCreateHeadersSchema,
        body: OrderCreateSchema,
        response: { 202: OrderAcceptedSchema, ...errorResponses(401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const { order, isReplay } = await orders.place(
        request.body,
        principalOf(request).userId,
        request.headers['idempotency-key'],
      )
      if (isReplay) reply.header('idempotent-replayed', 'true')
      return reply.code(202).send(order)
    },
  )

  app.get(
    '/api/orders/:id',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'One of your orders',
        security: BEARER,
        params: IdParamsSchema,
        response: { 200: OrderPublicSchema, ...errorResponses(401, 404, 422) },
      },
    },
    async (request) => orders.get(request.params.id, principalOf(request).userId),
  )

  app.get(
    '/api/orders/:id/events',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: "Server-sent events of one of your orders' status changes",
        security: BEARER,
        params: IdParamsSchema,
        response: { 200: EventStreamResponse, ...errorResponses(401, 404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const userId = principalOf(request).userId
      return sse.streamChannel(request, reply, {
        channel: orderChannel(id),
        authorize: async () => {
          await orders.get(id, userId)
        },
        replay: 'all',
      })
    },
  )
}
