import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { type Authenticated, principalOf } from '../../http/plugins/authenticate.ts'
import { sendJsonText } from '../../http/reply.ts'
import { BEARER, errorResponses, IdParamsSchema, NoContentSchema } from '../../http/schemas.ts'
import type { ItemsExport } from './items-export.ts'
import {
  ItemCreateSchema,
  ItemPageQuerySchema,
  ItemPageSchema,
  ItemPublicSchema,
  ItemUpdateSchema,
} from './items-schemas.ts'
import type { ItemsService } from './items-service.ts'

export interface ItemsRoutesOptions {
  items: ItemsService
  /** preHandlers that admit only signed-in users (and apply the per-user rate limit). */
  authenticated: Authenticated
  /** The streamed CSV export (GET /api/items/export.csv). */
  itemsExport: ItemsExport
}

/** /api/items: list, get (cached), create, partial update and soft delete by the creator. */
export const itemsRoutes: FastifyPluginAsyncTypebox<ItemsRoutesOptions> = async (
  app,
  { items, authenticated, itemsExport },
) => {
  const tags = ['items']

  app.get(
    '/api/items/export.csv',
    {
      schema: {
        tags,
        summary: 'Download every live item as CSV, streamed',
        description:
          'RFC 4180 CSV (UTF-8, CRLF) with a header line, read in batches at constant memory. ' +
          "Text starting with = + - @ is prefixed with ' so spreadsheets do not run it.",
        response: {
          200: {
            description: 'A CSV file (Content-Disposition: attachment)',
            content: { 'text/csv': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) =>
      // The stream is the body; the typed reply only knows the schema's string.
      (reply as FastifyReply)
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${itemsExport.fileName()}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(itemsExport.csvChunks())),
  )

  app.get(
    '/api/items',
    {
      schema: {
        tags,
        summary: 'List live items, a page at a time',
        querystring: ItemPageQuerySchema,
        response: { 200: ItemPageSchema, ...errorResponses(422) },
      },
    },
    async (request) => items.list(request.query.page, request.query.limit),
  )

  app.get(
    '/api/items/:id',
    {
      schema: {
        tags,
        summary: 'One item (read through the cache)',
        params: IdParamsSchema,
        response: { 200: ItemPublicSchema, ...errorResponses(404, 422) },
      },
    },
    async (request, reply) => {
      return sendJsonText(reply, await items.getJson(request.params.id))
    },
  )

  app.post(
    '/api/items',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Create an item',
        security: BEARER,
        body: ItemCreateSchema,
        response: { 201: ItemPublicSchema, ...errorResponses(401, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await items.create(request.body, principalOf(request).userId)),
  )

  app.patch(
    '/api/items/:id',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Change some fields of your item',
        security: BEARER,
        params: IdParamsSchema,
        body: ItemUpdateSchema,
        response: { 200: ItemPublicSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => items.update(request.params.id, request.body, principalOf(request).userId),
  )

  app.delete(
    '/api/items/:id',
    {
      preHandler: authenticated,
      schema: {
        tags,
        summary: 'Delete your item (soft delete)',
        security: BEARER,
        params: IdParamsSchema,
        response: { 204: NoContentSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      await items.remove(request.params.id, principalOf(request).userId)
      return reply.code(204).send(null)
    },
  )
}
