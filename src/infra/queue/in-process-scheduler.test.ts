import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createInProcessTaskBroker, defineSchedule, defineTask, parseCron } from './index.ts'

test('interval and cron schedules fire on time, once per firing, and list their next run', async (t) => {
  const broker = await createInProcessTaskBroker()
  t.after(() => broker.close())
  const runs: string[] = []
  const task = defineTask({
    name: 'test.tick',
    handler: (label: string, context) => {
      runs.push(`${label} ${context.id}`)
    },
  })
  await broker.createWorker({ tasks: [task] }).start()
  const everySecond = defineSchedule({ id: 'every', task, payload: 'every', everyMs: 1000 })
  const cronSecond = defineSchedule({ id: 'cron', task, payload: 'cron', cron: '*/1 * * * * *' })
  const scheduler = broker.createScheduler([everySecond, cronSecond])
  const startedAt = Date.now()
  await scheduler.start()
  const listed = await scheduler.list()
  const nextSecond = Math.floor(startedAt / 1000) * 1000 + 1000
  assert.deepEqual(listed, [
    { id: 'every', task: 'test.tick', everyMs: 1000, nextRunAt: new Date(nextSecond) },
    { id: 'cron', task: 'test.tick', cron: '*/1 * * * * *', nextRunAt: new Date(nextSecond) },
  ])
  await new Promise((resolve) => setTimeout(resolve, nextSecond + 1400 - Date.now()))
  await scheduler.close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(runs.sort(), [
    `cron repeat:cron:${nextSecond}`,
    `cron repeat:cron:${nextSecond + 1000}`,
    `every repeat:every:${nextSecond}`,
    `every repeat:every:${nextSecond + 1000}`,
  ])
  assert.equal(
    (await broker.status(`repeat:every:${nextSecond}`))?.state,
    'succeeded',
    'a firing is a task with a status',
  )
})

test('the schedule table refuses a bad id, both forms at once, a short interval or bad cron', () => {
  const task = defineTask({ name: 'test.tick', handler: () => 1 })
  assert.throws(() => defineSchedule({ id: 'a b', task, payload: 1, everyMs: 1000 }), /id/)
  assert.throws(
    () => defineSchedule({ id: 'x', task, payload: 1, everyMs: 1000, cron: '* * * * *' }),
    /exactly one/,
  )
  assert.throws(() => defineSchedule({ id: 'x', task, payload: 1 }), /exactly one/)
  assert.throws(() => defineSchedule({ id: 'x', task, payload: 1, everyMs: 10 }), />= 100/)
  assert.throws(() => defineSchedule({ id: 'x', task, payload: 1, cron: '61 * * * *' }), /minute/)
  assert.ok(parseCron('*/15 * * * *'))
})
