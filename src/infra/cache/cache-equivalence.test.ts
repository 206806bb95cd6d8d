import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test } from 'node:test'
import fc from 'fast-check'
import pino from 'pino'
import { serviceUrls, whenReachable } from '../../../test/helpers/services.ts'
import { createRedis, type RedisConnection } from '../redis/index.ts'
import { deleteKeysUnder } from '../redis/redis-testing.ts'
import type { Cache } from './cache.ts'
import { createMemoryCache } from './memory-cache.ts'
import { createRedisCache } from './redis-cache.ts'

// The contract suite checks chosen cases; this one lets fast-check invent command sequences over
// a few keys and asserts the memory cache answers each exactly as real Redis does, errors
// included. A failure prints the shortest sequence that shows the difference.

const availability = await whenReachable('redis')
let connection: RedisConnection | undefined
after(() => connection?.close())

const key = fc.constantFrom('a', 'b', 'c')
const field = fc.constantFrom('x', 'y', 'z')
const value = fc.constantFrom('', 'v', 'w', '0', '7', '-3', '01', '1.5')
const side = fc.constantFrom('left' as const, 'right' as const)
const index = fc.integer({ min: -5, max: 5 })
const ttl = fc.constantFrom(undefined, 60, 3600)

type Command = { label: string; run(cache: Cache): Promise<unknown> }
const command = (label: string, run: (cache: Cache) => Promise<unknown>): Command => ({
  label,
  run,
})

const commands: fc.Arbitrary<Command> = fc.oneof(
  fc.tuple(key).map(([k]) => command(`get ${k}`, (c) => c.get(k))),
  fc
    .tuple(key, value, ttl)
    .map(([k, v, s]) => command(`set ${k} ${v} ${s}`, (c) => c.set(k, v, s))),
  fc.tuple(key, key).map(([k, l]) => command(`delete ${k} ${l}`, (c) => c.delete(k, l))),
  fc
    .tuple(key, fc.constantFrom(0, 60))
    .map(([k, s]) => command(`expire ${k} ${s}`, (c) => c.expire(k, s))),
  fc.tuple(key).map(([k]) => command(`exists ${k}`, (c) => c.exists(k))),
  fc.tuple(key).map(([k]) => command(`ttl ${k}`, (c) => c.ttl(k))),
  fc
    .tuple(key, fc.dictionary(field, value, { maxKeys: 3 }))
    .map(([k, f]) => command(`hashSet ${k} ${JSON.stringify(f)}`, (c) => c.hashSet(k, f))),
  fc.tuple(key, field).map(([k, f]) => command(`hashGet ${k} ${f}`, (c) => c.hashGet(k, f))),
  fc.tuple(key).map(([k]) => command(`hashGetAll ${k}`, (c) => c.hashGetAll(k))),
  fc
    .tuple(key, fc.array(field, { maxLength: 3 }))
    .map(([k, f]) => command(`hashDelete ${k} ${f}`, (c) => c.hashDelete(k, ...f))),
  fc
    .tuple(key, fc.array(value, { maxLength: 3 }), side)
    .map(([k, v, s]) => command(`listPush ${k} ${v} ${s}`, (c) => c.listPush(k, v, s))),
  fc
    .tuple(key, index, index)
    .map(([k, a, b]) => command(`listRange ${k} ${a} ${b}`, (c) => c.listRange(k, a, b))),
  fc.tuple(key, side).map(([k, s]) => command(`listPop ${k} ${s}`, (c) => c.listPop(k, s))),
  fc
    .tuple(key, fc.integer({ min: -3, max: 3 }), ttl)
    .map(([k, by, s]) => command(`increment ${k} ${by} ${s}`, (c) => c.increment(k, by, s))),
)

/** What a call did, comparable across implementations: its value, or the kind of its error. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call }
  } catch (error) {
    const message = (error as Error).message
    return { error: message.match(/WRONGTYPE|not an integer|overflow/)?.[0] ?? message }
  }
}

test(
  'the memory cache answers any command sequence exactly as Redis does',
  availability,
  async () => {
    connection ??= await createRedis(serviceUrls.redis, pino({ level: 'silent' }))
    const redis = connection.client
    await fc.assert(
      fc.asyncProperty(fc.array(commands, { minLength: 1, maxLength: 40 }), async (sequence) => {
        const prefix = `t-${randomBytes(6).toString('hex')}`
        const memory = createMemoryCache({ prefix, maxEntries: 1000 })
        const real = createRedisCache({ redis, prefix })
        try {
          for (const [step, { label, run }] of sequence.entries()) {
            const [expected, actual] = [await outcome(run(real)), await outcome(run(memory))]
            assert.deepEqual(actual, expected, `step ${step}: ${label}`)
          }
        } finally {
          await memory.close()
          await deleteKeysUnder(redis, prefix)
        }
      }),
      { numRuns: 1000 },
    )
  },
)
