import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  DeadlineExceededError,
  firstAnswer,
  gatherWithDeadline,
  SupersededError,
  type Task,
} from './parallel.ts'

/** A task that answers `value` after `ms`, honours its signal, and records the signal. */
function after<T>(ms: number, value: T, seen: AbortSignal[] = []): Task<T> {
  return async (signal) => {
    seen.push(signal)
    await sleep(ms, undefined, { signal })
    return value
  }
}

function failing(ms: number, message: string): Task<never> {
  return async (signal) => {
    await sleep(ms, undefined, { signal })
    throw new Error(message)
  }
}

test('gather returns what arrived by the deadline and aborts the rest', async () => {
  const signals: AbortSignal[] = []
  const started = performance.now()
  const outcomes = await gatherWithDeadline(
    [after(10, 'fast', signals), failing(5, 'boom'), after(5_000, 'slow', signals)],
    150,
  )
  const elapsedMs = performance.now() - started
  assert.ok(elapsedMs >= 140 && elapsedMs < 1_000, `took ${elapsedMs} ms`)
  assert.deepEqual(outcomes[0], { status: 'fulfilled', value: 'fast' })
  assert.equal(outcomes[1].status, 'rejected')
  assert.match(String((outcomes[1] as { reason: Error }).reason), /boom/)
  assert.deepEqual(outcomes[2], { status: 'timed_out' })
  assert.equal(signals[0]?.aborted, false, 'a task that answered is not aborted')
  assert.equal(signals[1]?.aborted, true, 'the late task is aborted')
  assert.ok(signals[1]?.reason instanceof DeadlineExceededError)
})

test('gather keeps the keys of a record of tasks', async () => {
  const outcomes = await gatherWithDeadline(
    { users: after(5, [1, 2]), orders: after(2_000, 'late') },
    50,
  )
  assert.deepEqual(outcomes.users, { status: 'fulfilled', value: [1, 2] })
  assert.deepEqual(outcomes.orders, { status: 'timed_out' })
})

test('gather resolves as soon as every task is done, well before the deadline', async () => {
  const started = performance.now()
  const outcomes = await gatherWithDeadline([after(5, 1), after(10, 2)], 10_000)
  assert.ok(performance.now() - started < 1_000)
  assert.deepEqual(
    outcomes.map((outcome) => outcome.status),
    ['fulfilled', 'fulfilled'],
  )
  assert.deepEqual(await gatherWithDeadline([], 10_000), [])
})

test('gather answers at the deadline even when a task ignores its signal', async () => {
  let isLateRejected = false
  const stubborn: Task<string> = async () => {
    await sleep(300)
    isLateRejected = true
    throw new Error('late failure nobody listens to')
  }
  const started = performance.now()
  const outcomes = await gatherWithDeadline([stubborn], 30)
  assert.ok(performance.now() - started < 250)
  assert.deepEqual(outcomes[0], { status: 'timed_out' })
  await sleep(350)
  assert.equal(isLateRejected, true, 'its late rejection was swallowed, not unhandled')
})

test("aborting the caller's signal aborts every running task of a gather", async () => {
  const signals: AbortSignal[] = []
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('client went away')), 20)
  const outcomes = await gatherWithDeadline([after(5_000, 1, signals)], 5_000, {
    signal: controller.signal,
  })
  assert.equal(outcomes[0].status, 'rejected')
  assert.equal(signals[0]?.aborted, true)
})

test('firstAnswer resolves with the first success and aborts the losers', async () => {
  const signals: AbortSignal[] = []
  const started = performance.now()
  const answer = await firstAnswer([
    after(2_000, 'slow', signals),
    failing(5, 'fails first'),
    after(30, 'fast', signals),
    after(3_000, 'slower', signals),
  ])
  assert.equal(answer, 'fast')
  assert.ok(performance.now() - started < 1_000)
  const [slow, fast, slower] = signals
  assert.equal(fast?.aborted, false)
  assert.equal(slow?.aborted, true)
  assert.equal(slower?.aborted, true)
  assert.ok(slow?.reason instanceof SupersededError)
})

test('firstAnswer rejects with every error when all tasks fail', async () => {
  await assert.rejects(firstAnswer([failing(5, 'a'), failing(10, 'b')]), (error: unknown) => {
    assert.ok(error instanceof AggregateError)
    assert.deepEqual(
      error.errors.map((inner: Error) => inner.message),
      ['a', 'b'],
    )
    return true
  })
  await assert.rejects(firstAnswer([]), AggregateError)
})

test('firstAnswer stops everything when the caller aborts', async () => {
  const signals: AbortSignal[] = []
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 20)
  await assert.rejects(
    firstAnswer([after(5_000, 1, signals), after(5_000, 2, signals)], {
      signal: controller.signal,
    }),
    AggregateError,
  )
  assert.ok(signals.every((signal) => signal.aborted))
})
