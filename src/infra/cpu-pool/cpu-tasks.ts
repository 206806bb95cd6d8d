import { createHash } from 'node:crypto'

/**
 * The CPU-bound tasks the pool runs, one export each. This module is loaded in the worker
 * threads (Node 24 strips the types of .ts files there too); the main thread imports only its
 * types. Inputs are checked here as well as in the route: a task past these bounds would hold a
 * thread for minutes.
 */

export const HASH_CHAIN_MAX_ROUNDS = 20_000_000
export const COUNT_PRIMES_MAX_LIMIT = 100_000_000

export interface HashChainInput {
  seed: string
  rounds: number
}

/** SHA-256 applied `rounds` times, each round to the previous digest; the last digest in hex. */
export function hashChain({ seed, rounds }: HashChainInput): string {
  checkInteger('rounds', rounds, 1, HASH_CHAIN_MAX_ROUNDS)
  let digest: Buffer = Buffer.from(seed, 'utf8')
  for (let round = 0; round < rounds; round++) {
    digest = createHash('sha256').update(digest).digest()
  }
  return digest.toString('hex')
}

export interface CountPrimesInput {
  limit: number
}

/** How many primes are <= limit (sieve of Eratosthenes over odd numbers). */
export function countPrimes({ limit }: CountPrimesInput): number {
  checkInteger('limit', limit, 0, COUNT_PRIMES_MAX_LIMIT)
  if (limit < 2) return 0
  // Index i stands for the odd number 2i + 1.
  const size = Math.floor((limit - 1) / 2) + 1
  const isComposite = new Uint8Array(size)
  let count = 1 // the prime 2
  for (let index = 1; index < size; index++) {
    if (isComposite[index] === 1) continue
    count++
    const prime = 2 * index + 1
    for (let multiple = (prime * prime - 1) / 2; multiple < size; multiple += prime) {
      isComposite[multiple] = 1
    }
  }
  return count
}

function checkInteger(name: string, value: number, minimum: number, maximum: number): void {
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new RangeError(`${name} must be an integer from ${minimum} to ${maximum}, got ${value}`)
  }
}
