import assert from 'node:assert/strict'
import { test } from 'node:test'
import { numberSquare, numberSum } from '../../jobs/number-tasks.ts'
import { call, chain, chord, group, type TaskQueue } from './index.ts'

// Checked by `tsc`, never run: each @ts-expect-error line must be a type error.
async function typeChecks(queue: TaskQueue) {
  const handle = await queue.submit(numberSum, [1, 2])
  const sum: number | undefined = (await queue.status(handle))?.result
  // @ts-expect-error a number-sum payload is a list of numbers
  await queue.submit(numberSum, 'one')
  // @ts-expect-error number-sum takes a list, but number-square gives one number
  chain(call(numberSquare, 2)).pipe(numberSum)
  // @ts-expect-error a chord's callback takes the list of results; number-square takes a number
  chord([call(numberSum, [1])], numberSquare)
  const pair = await queue.submitWorkflow(group([call(numberSum, [1]), call(numberSquare, 2)]))
  const results: [number, number] | undefined = (await queue.status(pair))?.result
  const chained = await queue.submitWorkflow(chain(call(numberSum, [1, 2])).pipe(numberSquare))
  const last: number | undefined = (await queue.status(chained))?.result
  const untyped: unknown = (await queue.status('some-id'))?.result
  return [sum, results, last, untyped]
}

test('payload and result types flow from the task into submit, workflows and status', () => {
  assert.equal(typeof typeChecks, 'function')
})
