import Type from 'typebox'
import { defineTask } from '../infra/queue/index.ts'

/** The numbers `tasks.number-sum` adds: what POST /api/tasks/number-sum accepts. */
export const NumberSumPayloadSchema = Type.Array(Type.Number(), { minItems: 1, maxItems: 10_000 })
export type NumberSumPayload = Type.Static<typeof NumberSumPayloadSchema>

/**
 * Adds a list of numbers: the Python service's `number_sum`, run on demand and every 15
 * minutes. It also serves as a chord's callback, which gets the list of its group's results.
 */
export const numberSum = defineTask({
  name: 'tasks.number-sum',
  handler: (numbers: NumberSumPayload): number => numbers.reduce((sum, value) => sum + value, 0),
})

/** Squares a number: a second step for chains (`chain(call(numberSum, [1, 2])).pipe(numberSquare)`). */
export const numberSquare = defineTask({
  name: 'tasks.number-square',
  handler: (value: number): number => value * value,
})

/** 1, 2, …, n. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, index) => index + 1)
}
