import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/schemas.ts'
import type { AggregateService } from './aggregate-service.ts'

const AnswerSchema = Type.Object({
  status: Type.Integer({ description: "the upstream's HTTP status" }),
  data: Type.Unknown({ description: "the upstream's JSON body" }),
})

export const AggregateSchema = Type.Object(
  {
    results: Type.Record(Type.String(), AnswerSchema),
    failed: Type.Record(
      Type.String(),
      Type.Object({ status: Type.Integer(), detail: Type.String() }),
    ),
    timed_out: Type.Array(Type.String()),
    elapsed_ms: Type.Integer(),
  },
  { description: 'What each upstream answered by the deadline' },
)

export const FastestSchema = Type.Object(
  {
    upstream: Type.String(),
    status: Type.Integer(),
    data: Type.Unknown(),
    elapsed_ms: Type.Integer(),
  },
  { description: 'The first good answer; the other calls were cancelled' },
)

const DeadlineQuerySchema = Type.Object({
  deadline_ms: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 60_000, description: 'default AGGREGATE_DEADLINE_MS' }),
  ),
})

export interface AggregateRoutesOptions {
  aggregate: AggregateService
  deadlineMs: number
}

/** /api/aggregate: the AGGREGATE_UPSTREAMS called at once under one deadline. */
export const aggregateRoutes: FastifyPluginAsyncTypebox<AggregateRoutesOptions> = async (
  app,
  { aggregate, deadlineMs },
) => {
  app.get(
    '/api/aggregate',
    {
      schema: {
        tags: ['integrations'],
        summary: 'Call every upstream at once; answer with what arrived by the deadline',
        querystring: DeadlineQuerySchema,
        response: { 200: AggregateSchema, ...errorResponses(422) },
      },
    },
    async (request) => aggregate.gather(request.query.deadline_ms ?? deadlineMs),
  )

  app.get(
    '/api/aggregate/fastest',
    {
      schema: {
        tags: ['integrations'],
        summary: 'Call every upstream at once; the first good answer wins, the rest are cancelled',
        querystring: DeadlineQuerySchema,
        response: { 200: FastestSchema, ...errorResponses(422, 502, 503, 504) },
      },
    },
    async (request) => aggregate.fastest(request.query.deadline_ms ?? deadlineMs),
  )
}
