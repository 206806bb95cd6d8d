import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'
import {
  createSnowflake,
  isWorkerIdPinned,
  parseSnowflake,
  SNOWFLAKE_EPOCH_MS,
  workerIdFrom,
} from './index.ts'

const run = promisify(execFile)
const T0 = SNOWFLAKE_EPOCH_MS + 1_000_000_000

test('an id packs time, worker and sequence, and travels as a decimal string', () => {
  const ids = createSnowflake({ workerId: 77, clock: () => T0 })
  const first = ids.nextId()
  const second = ids.nextId()
  assert.match(first, /^\d+$/)
  assert.deepEqual(parseSnowflake(first), { timestampMs: T0, workerId: 77, sequence: 0 })
  assert.deepEqual(parseSnowflake(second), { timestampMs: T0, workerId: 77, sequence: 1 })
  // Real ids are far above 2^53: a JavaScript number would corrupt them, a string does not.
  const now = createSnowflake({ workerId: 1 }).next()
  assert.ok(now > BigInt(Number.MAX_SAFE_INTEGER))
  assert.equal(BigInt(now.toString()), now)
})

test('the worker id comes from WORKER_ID, else the pod ordinal, else 0', () => {
  assert.equal(workerIdFrom({ WORKER_ID: 9, POD_NAME: 'api-3' }), 9)
  assert.equal(workerIdFrom({ POD_NAME: 'api-3' }), 3)
  assert.equal(workerIdFrom({ POD_NAME: 'servekit-worker-12' }), 12)
  assert.equal(workerIdFrom({ POD_NAME: 'api-7d9f-xk2p' }), 0, 'a Deployment pod has no ordinal')
  assert.equal(workerIdFrom({}), 0)
  assert.throws(() => workerIdFrom({ POD_NAME: 'api-1024' }), /set WORKER_ID/)
  assert.equal(
    workerIdFrom({ POD_NAME: 'api-7d9f8c6b5-24567' }),
    0,
    'an all-digit random suffix is no ordinal',
  )
  assert.equal(isWorkerIdPinned({ POD_NAME: 'api-7d9f8c6b5-24567' }), false)
  assert.equal(isWorkerIdPinned({ POD_NAME: 'api-3' }), true)
  assert.equal(isWorkerIdPinned({ WORKER_ID: 0 }), true)
  assert.throws(() => createSnowflake({ workerId: 1024 }), RangeError)
})

test('after 4096 ids in one millisecond, the next id waits for the next millisecond', () => {
  let calls = 0
  const ids = createSnowflake({ workerId: 1, clock: () => (calls++ < 4100 ? T0 : T0 + 1) })
  const made = Array.from({ length: 4097 }, () => parseSnowflake(ids.next()))
  assert.deepEqual(made[4095], { timestampMs: T0, workerId: 1, sequence: 4095 })
  assert.deepEqual(made[4096], { timestampMs: T0 + 1, workerId: 1, sequence: 0 })
})

test('a clock that steps back a few ms is waited out: ids keep rising, no logical clock', () => {
  let offsetMs = 0
  const events: unknown[] = []
  const ids = createSnowflake({
    workerId: 2,
    clock: () => Date.now() - offsetMs,
    onClockBackwards: (event) => events.push(event),
  })
  const before = ids.next()
  offsetMs = 3
  const after = ids.next()
  assert.ok(after > before)
  assert.ok(parseSnowflake(after).timestampMs >= parseSnowflake(before).timestampMs)
  assert.deepEqual(events, [])
})

test('a clock that steps back far goes on from the last timestamp and reports it once', () => {
  let nowMs = T0
  const events: Array<{ driftMs: number; isLogical: boolean }> = []
  const ids = createSnowflake({
    workerId: 3,
    clock: () => nowMs,
    onClockBackwards: (event) => events.push(event),
  })
  const before = ids.next()
  nowMs = T0 - 10_000
  const during = Array.from({ length: 5000 }, () => ids.next())
  assert.deepEqual(events, [{ driftMs: 10_000, isLogical: true }])
  let previous = before
  for (const id of during) {
    assert.ok(id > previous, 'never repeats, never goes back')
    previous = id
  }
  // 5000 ids do not fit one millisecond: the logical clock moved on by one, not the wall clock.
  assert.equal(parseSnowflake(previous).timestampMs, T0 + 1)

  nowMs = T0 + 5
  const caughtUp = ids.next()
  assert.ok(caughtUp > previous)
  assert.deepEqual(parseSnowflake(caughtUp), { timestampMs: T0 + 5, workerId: 3, sequence: 0 })
})

test('two processes making 100,000 ids each: no duplicate, each rising, sorted by time', async () => {
  const moduleUrl = new URL('./index.ts', import.meta.url).href
  const configUrl = new URL('../../config/index.ts', import.meta.url).href
  const script = `
    import { createSnowflake, workerIdFrom } from ${JSON.stringify(moduleUrl)}
    import { loadConfig } from ${JSON.stringify(configUrl)}
    const ids = createSnowflake({ workerId: workerIdFrom(loadConfig(process.env, { readFiles: false })) })
    const startedMs = Date.now()
    const out = new Array(100000)
    for (let i = 0; i < out.length; i++) out[i] = ids.nextId()
    process.stdout.write(JSON.stringify({ startedMs, endedMs: Date.now(), ids: out }))
  `
  const generate = async (env: Record<string, string>) => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      maxBuffer: 64 * 1024 * 1024,
    })
    return JSON.parse(stdout) as { startedMs: number; endedMs: number; ids: string[] }
  }
  const runs = await Promise.all([generate({ WORKER_ID: '1' }), generate({ POD_NAME: 'api-2' })])

  const all = new Set<string>()
  for (const [index, { startedMs, endedMs, ids }] of runs.entries()) {
    assert.equal(ids.length, 100_000)
    let previous = -1n
    for (const id of ids) {
      const value = BigInt(id)
      assert.ok(value > previous, `process ${index}: ${id} follows ${previous}`)
      previous = value
      all.add(id)
    }
    const first = parseSnowflake(ids[0] as string)
    const last = parseSnowflake(ids.at(-1) as string)
    assert.equal(first.workerId, index + 1)
    assert.ok(first.timestampMs >= startedMs && last.timestampMs <= endedMs)
  }
  assert.equal(all.size, 200_000, 'no id was made twice')

  const sorted = [...all].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  let previousMs = 0
  for (const id of sorted) {
    const { timestampMs } = parseSnowflake(id)
    assert.ok(timestampMs >= previousMs, 'ordering ids orders them by time')
    previousMs = timestampMs
  }
})
