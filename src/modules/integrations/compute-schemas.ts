import Type from 'typebox'
import { COUNT_PRIMES_MAX_LIMIT, HASH_CHAIN_MAX_ROUNDS } from '../../infra/cpu-pool/index.ts'

/**
 * One body for every task: `task` says which, and the fields that task needs must be there
 * (checked by the service; a flat object keeps validation errors readable, where a union of
 * shapes would report every branch).
 */
export const ComputeRequestSchema = Type.Object(
  {
    task: Type.Union([Type.Literal('hash_chain'), Type.Literal('count_primes')], {
      description:
        'hash_chain: SHA-256 applied `rounds` times to `seed`; count_primes: primes <= `limit`',
    }),
    seed: Type.Optional(Type.String({ maxLength: 256, description: 'hash_chain input' })),
    rounds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: HASH_CHAIN_MAX_ROUNDS,
        description: 'hash_chain rounds',
      }),
    ),
    limit: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: COUNT_PRIMES_MAX_LIMIT,
        description: 'count_primes bound',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ComputeRequest = Type.Static<typeof ComputeRequestSchema>

export const ComputeResultSchema = Type.Object(
  {
    task: Type.String(),
    result: Type.Union([Type.String(), Type.Integer()], {
      description: 'hex digest (hash_chain) or a count (count_primes)',
    }),
    elapsed_ms: Type.Integer(),
  },
  { description: 'The result, computed on a worker thread' },
)
export type ComputeResult = Type.Static<typeof ComputeResultSchema>
