/**
 * Snowflake ids: 64-bit, time-ordered, unique across processes as long as each process has its
 * own worker id. Layout (high to low): 1 sign bit (always 0), 41 bits of milliseconds since
 * SNOWFLAKE_EPOCH_MS (about 69 years), 10 bits of worker id, 12 bits of sequence (4096 ids per
 * millisecond per worker). Internally a bigint; at the edges (JSON, API, database rows) a
 * decimal string, because a JavaScript number loses precision above 2^53.
 */

/** 2024-01-01T00:00:00.000Z: ids stay positive 64-bit integers until 2093. */
export const SNOWFLAKE_EPOCH_MS = Date.UTC(2024, 0, 1)

const WORKER_BITS = 10n
const SEQUENCE_BITS = 12n
const MAX_WORKER_ID = 1023
const MAX_SEQUENCE = 4095
const MAX_TIMESTAMP = 2 ** 41 - 1
const TIMESTAMP_SHIFT = WORKER_BITS + SEQUENCE_BITS

/** Makes ids; what repositories need to give a new row its id. */
export interface IdGenerator {
  /** The next id as a decimal string (the form stored rows and JSON carry). */
  nextId(): string
}

export interface Snowflake extends IdGenerator {
  readonly workerId: number
  /** The next id as a bigint. */
  next(): bigint
}

export interface SnowflakeOptions {
  /** 0..1023, unique among the processes that write to the same tables. */
  workerId: number
  /** Milliseconds since the Unix epoch; injectable so tests can move time. */
  clock?: () => number
  epochMs?: number
  /** A backwards step up to this long is waited out; a longer one switches to a logical clock. */
  maxWaitMs?: number
  /** Told when the clock steps back, with how far (ms) and whether ids go on from a logical clock. */
  onClockBackwards?: (event: { driftMs: number; isLogical: boolean }) => void
}

/**
 * Creates a generator. Within one process every id is greater than the one before, even when the
 * clock steps back: a small step (≤ maxWaitMs) is waited out; a bigger one (NTP correction, VM
 * migration) makes the generator go on from the last timestamp it used, as a logical clock, until
 * the wall clock catches up. Ids never repeat and never go backwards.
 */
export function createSnowflake(options: SnowflakeOptions): Snowflake {
  const { workerId } = options
  if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER_ID) {
    throw new RangeError(`snowflake worker id must be an integer from 0 to 1023, got ${workerId}`)
  }
  const clock = options.clock ?? Date.now
  const epochMs = options.epochMs ?? SNOWFLAKE_EPOCH_MS
  const maxWaitMs = options.maxWaitMs ?? 5
  const worker = BigInt(workerId) << SEQUENCE_BITS
  let lastMs = -1
  let sequence = 0
  let isBehind = false

  const next = (): bigint => {
    let now = clock()
    if (now < lastMs) {
      const driftMs = lastMs - now
      if (driftMs <= maxWaitMs) {
        sleepSync(driftMs)
        now = clock()
      }
      if (now < lastMs) {
        if (!isBehind) options.onClockBackwards?.({ driftMs, isLogical: true })
        isBehind = true
        now = lastMs
      }
    } else if (isBehind && now > lastMs) {
      isBehind = false
    }

    if (now === lastMs) {
      sequence = (sequence + 1) & MAX_SEQUENCE
      if (sequence === 0) {
        // This millisecond is used up. On a logical clock move it on by one; on the wall clock
        // wait for the next millisecond (at most one).
        if (isBehind) now = lastMs + 1
        else while (now <= lastMs) now = clock()
      }
    } else {
      sequence = 0
    }
    lastMs = now

    const elapsed = now - epochMs
    if (elapsed < 0 || elapsed > MAX_TIMESTAMP) {
      throw new RangeError(`clock ${new Date(now).toISOString()} is outside the snowflake range`)
    }
    return (BigInt(elapsed) << TIMESTAMP_SHIFT) | worker | BigInt(sequence)
  }

  return { workerId, next, nextId: () => next().toString() }
}

/** The parts of an id: when it was made, by which worker, and its sequence in that millisecond. */
export function parseSnowflake(
  id: bigint | string,
  epochMs = SNOWFLAKE_EPOCH_MS,
): { timestampMs: number; workerId: number; sequence: number } {
  const value = BigInt(id)
  return {
    timestampMs: Number(value >> TIMESTAMP_SHIFT) + epochMs,
    workerId: Number((value >> SEQUENCE_BITS) & BigInt(MAX_WORKER_ID)),
    sequence: Number(value & BigInt(MAX_SEQUENCE)),
  }
}

/**
 * The worker id for this process: WORKER_ID when set, else the ordinal suffix of POD_NAME
 * (a StatefulSet pod `api-3` is worker 3), else 0.
 */
/**
 * The StatefulSet ordinal at the end of a pod name (`api-3` → "3"). A Deployment pod's name ends
 * in a random five-character suffix, which may be all digits: that is not an ordinal.
 */
function podOrdinal(podName: string | undefined): string | undefined {
  return podName?.match(/-(\d{1,4})$/)?.[1]
}

/** Whether config pins the worker id (WORKER_ID or a StatefulSet ordinal); else it may be leased. */
export function isWorkerIdPinned(settings: { WORKER_ID?: number; POD_NAME?: string }): boolean {
  return settings.WORKER_ID !== undefined || podOrdinal(settings.POD_NAME) !== undefined
}

export function workerIdFrom(settings: { WORKER_ID?: number; POD_NAME?: string }): number {
  if (settings.WORKER_ID !== undefined) return settings.WORKER_ID
  const ordinal = podOrdinal(settings.POD_NAME)
  if (ordinal !== undefined) {
    const value = Number(ordinal)
    if (value > MAX_WORKER_ID) {
      throw new RangeError(
        `POD_NAME ordinal ${value} is above 1023; set WORKER_ID to a unique value from 0 to 1023`,
      )
    }
    return value
  }
  return 0
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4))

/** Blocks for `ms` without spinning; used only to wait out a clock step of a few ms. */
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms)
}
