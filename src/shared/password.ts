import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import * as bcrypt from '@node-rs/bcrypt'
import Type from 'typebox'
import { AppError } from './errors.ts'

/** Shortest password accepted, in UTF-8 bytes. */
export const PASSWORD_MIN_BYTES = 8
/** Longest password accepted, in UTF-8 bytes: bcrypt reads no further. */
export const PASSWORD_MAX_BYTES = 72

/** What the password rule is and why; the 422 for a bad password says this. */
export const PASSWORD_RULE =
  `Password must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes in UTF-8 ` +
  `(bcrypt ignores every byte past the ${PASSWORD_MAX_BYTES}nd, so a longer password would ` +
  'only seem stronger) and must not contain the NUL character'

/** Why `password` breaks the rule, or undefined when it is acceptable. */
export function passwordProblem(password: string): string | undefined {
  return passwordIssue(password)?.message
}

interface PasswordIssue {
  type: 'string_too_short' | 'string_too_long' | 'string_pattern_mismatch' | 'string_type'
  message: string
  bytes: number
}

function passwordIssue(password: string): PasswordIssue | undefined {
  const bytes = Buffer.byteLength(password, 'utf8')
  if (bytes < PASSWORD_MIN_BYTES)
    return { type: 'string_too_short', message: `${PASSWORD_RULE}; this one has ${bytes}`, bytes }
  if (bytes > PASSWORD_MAX_BYTES)
    return { type: 'string_too_long', message: `${PASSWORD_RULE}; this one has ${bytes}`, bytes }
  // Other bcrypt implementations (OpenBSD's, Python's) stop at a NUL byte: a hash made here from
  // such a password would not verify there, and the characters after it would add nothing.
  if (password.includes('\0'))
    return { type: 'string_pattern_mismatch', message: PASSWORD_RULE, bytes }
  return undefined
}

/**
 * Throws AppError PASSWORD_INVALID (kind 'invalid') when `password` breaks the rule; its details
 * are one FastAPI 422 entry `{loc, msg, type}` at `loc`.
 */
export function assertAcceptablePassword(
  password: string,
  loc: Array<string | number> = ['body', 'password'],
): void {
  const issue = typeof password === 'string' ? passwordIssue(password) : invalidType
  if (issue === undefined) return
  throw new AppError('invalid', 'PASSWORD_INVALID', issue.message, {
    details: [{ loc, msg: issue.message, type: issue.type }],
  })
}

const invalidType: PasswordIssue = { type: 'string_type', message: PASSWORD_RULE, bytes: 0 }

/** The JSON-schema keyword that checks a string's UTF-8 length; see `passwordAjvKeyword`. */
export const PASSWORD_KEYWORD = 'x-password-bytes'

/**
 * The ajv keyword behind `PasswordSchema`. Register it on Fastify's ajv:
 * `Fastify({ ajv: { plugins: [(ajv) => ajv.addKeyword(passwordAjvKeyword)] } })`. In ajv's strict
 * mode (Fastify's default) a schema using the keyword fails at start-up if it is not registered,
 * so a missing registration cannot silently let long passwords through.
 */
export const passwordAjvKeyword = {
  keyword: PASSWORD_KEYWORD,
  type: 'string' as const,
  schemaType: 'boolean' as const,
  errors: true,
  validate: validatePasswordKeyword,
}

function validatePasswordKeyword(enabled: boolean, data: string): boolean {
  const issue = enabled ? passwordIssue(data) : undefined
  if (issue === undefined) return true
  validatePasswordKeyword.errors = [
    { keyword: issue.type, message: issue.message, params: { bytes: issue.bytes } },
  ]
  return false
}
validatePasswordKeyword.errors = undefined as
  | Array<{ keyword: string; message: string; params: Record<string, unknown> }>
  | undefined

/**
 * A new password in a request body: 8 to 72 UTF-8 bytes, checked by `passwordAjvKeyword`.
 * JSON Schema's maxLength counts characters, not bytes, so it cannot express bcrypt's limit.
 */
export const PasswordSchema = Type.String({
  [PASSWORD_KEYWORD]: true,
  description: PASSWORD_RULE,
  examples: ['correct horse battery staple'],
})

export interface PasswordHasherOptions {
  /** bcrypt work factor for new hashes (BCRYPT_COST): 4 to 31; 12 in prod. */
  cost: number
}

export interface PasswordHasher {
  readonly cost: number
  /** A `$2b$` hash of `password`; rejects with AppError PASSWORD_INVALID if it breaks the rule. */
  hash(password: string): Promise<string>
  /** Throws AppError PASSWORD_INVALID (a 422 in FastAPI's shape) if `password` breaks the rule. */
  assertAcceptable(password: string): void
  /** Whether `password` matches `hash` (`$2a$`, `$2b$` or `$2y$`); false for a malformed hash. */
  verify(password: string, hash: string): Promise<boolean>
  /**
   * The login check: verifies against `hash`, or, when the user is unknown (`undefined`) or the
   * stored hash is unusable, against a dummy hash of the same cost, and then answers false. Both
   * paths run one real bcrypt comparison, so the response time does not reveal which names exist.
   */
  verifyOrDummy(password: string, hash: string | undefined): Promise<boolean>
  /** Whether a hash that just verified should be recomputed: lower cost or another version. */
  needsRehash(hash: string): boolean
}

/**
 * bcrypt through @node-rs/bcrypt: native code run on libuv's thread pool, so hashing never blocks
 * the event loop (the pool has UV_THREADPOOL_SIZE threads, 4 by default, shared with fs and dns).
 */
export function createPasswordHasher(options: PasswordHasherOptions): PasswordHasher {
  const { cost } = options
  if (!Number.isInteger(cost) || cost < 4 || cost > 31)
    throw new RangeError(`bcrypt cost must be an integer from 4 to 31, got ${cost}`)
  const bcryptSlots = limiter(Math.max(1, availableParallelism() - 1))

  // Computed once, off the event loop, as soon as the hasher exists, so that even the first
  // unknown-user login costs what a wrong password costs. The password is random and discarded:
  // the comparison result is never used.
  const dummyHash = bcrypt.hash(randomBytes(32), { cost })
  void dummyHash.catch(() => undefined)

  const verify = async (password: string, hash: string): Promise<boolean> => {
    if (typeof password !== 'string' || typeof hash !== 'string') return false
    try {
      return await bcryptSlots(() => bcrypt.verify(password, hash))
    } catch {
      return false
    }
  }

  return {
    cost,

    async hash(password) {
      assertAcceptablePassword(password)
      return bcryptSlots(() => bcrypt.hash(password, { cost, version: '2b' }))
    },

    assertAcceptable(password) {
      assertAcceptablePassword(password)
    },

    verify,

    async verifyOrDummy(password, hash) {
      const usable = hash !== undefined && isWellFormed(hash)
      const matches = await verify(password, usable ? hash : await dummyHash)
      return usable && matches
    },

    needsRehash(hash) {
      try {
        const parsed = bcrypt.parseOptions(hash)
        return parsed.cost < cost || parsed.version !== '2b'
      } catch {
        return false
      }
    },
  }
}

/**
 * Runs at most `slots` of the given calls at once, the rest in arrival order. bcrypt gets one
 * core fewer than the process may use (at least one): a burst of logins then never takes every
 * core from the event loop, nor every libuv thread from file and DNS work, and logins are no
 * slower, since bcrypt is bound by the CPU anyway. Measured with 50 logins at cost 12 on one core:
 * four hashes sharing it with the event loop delayed it by tens of milliseconds at p99.
 */
function limiter(slots: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0
  const waiting: Array<() => void> = []
  return async (task) => {
    if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve))
    else running += 1
    try {
      return await task()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else running -= 1
    }
  }
}

function isWellFormed(hash: string): boolean {
  if (typeof hash !== 'string' || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return false
  try {
    bcrypt.parseOptions(hash)
    return true
  } catch {
    return false
  }
}
