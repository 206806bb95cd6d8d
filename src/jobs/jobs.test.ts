import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from 'typebox/value'
import { call, chain, chord, createInProcessTaskBroker, waitForTask } from '../infra/queue/index.ts'
import {
  NumberSumPayloadSchema,
  numberSquare,
  numberSum,
  oneTo,
  schedules,
  standaloneTasks,
} from './index.ts'

test('number_sum is scheduled every 15 minutes to add 1..100', () => {
  const [numberSumSchedule] = schedules
  assert.equal(numberSumSchedule?.id, 'number_sum')
  assert.equal(numberSumSchedule?.task.name, 'tasks.number-sum')
  assert.equal(numberSumSchedule?.everyMs, 15 * 60_000)
  assert.deepEqual(numberSumSchedule?.payload, oneTo(100))
})

test('the payload schema takes 1 to 10,000 numbers', () => {
  assert.ok(Value.Check(NumberSumPayloadSchema, [1, 2.5, -3]))
  assert.ok(!Value.Check(NumberSumPayloadSchema, []))
  assert.ok(!Value.Check(NumberSumPayloadSchema, ['1']))
})

test('number-sum and number-square run as tasks, alone and in workflows', async (t) => {
  const broker = await createInProcessTaskBroker()
  t.after(() => broker.close())
  await broker.createWorker({ tasks: standaloneTasks }).start()
  assert.equal((await waitForTask(broker, await broker.submit(numberSum, oneTo(100)))).result, 5050)
  const squared = await broker.submitWorkflow(chain(call(numberSum, [1, 2])).pipe(numberSquare))
  assert.equal((await waitForTask(broker, squared)).result, 9)
  const total = await broker.submitWorkflow(
    chord([call(numberSum, [1, 2]), call(numberSum, [3, 4])], numberSum),
  )
  assert.equal((await waitForTask(broker, total)).result, 10)
})
