import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { singleFlight } from './single-flight.ts'

test('50 concurrent calls for one key run the loader once and share its value', async () => {
  const flight = singleFlight<{ id: string }>()
  let loads = 0
  const load = async () => {
    loads++
    await sleep(20)
    return { id: '42' }
  }
  const results = await Promise.all(Array.from({ length: 50 }, () => flight.run('item:42', load)))
  assert.equal(loads, 1)
  assert.equal(new Set(results).size, 1, 'every caller got the same object')
  assert.deepEqual(results[0], { id: '42' })
  assert.equal(flight.size, 0, 'nothing is kept once the call settles')
})

test('different keys load separately', async () => {
  const flight = singleFlight<string>()
  const loaded: string[] = []
  const load = (key: string) => async () => {
    loaded.push(key)
    await sleep(5)
    return key
  }
  const results = await Promise.all([
    flight.run('a', load('a')),
    flight.run('b', load('b')),
    flight.run('a', load('a')),
  ])
  assert.deepEqual(results, ['a', 'b', 'a'])
  assert.deepEqual(loaded, ['a', 'b'])
})

test('an error reaches every concurrent caller and is not remembered', async () => {
  const flight = singleFlight<string>()
  let loads = 0
  const failing = async () => {
    loads++
    await sleep(10)
    throw new Error('database down')
  }
  const outcomes = await Promise.allSettled(
    Array.from({ length: 50 }, () => flight.run('item:1', failing)),
  )
  assert.equal(loads, 1)
  assert.ok(
    outcomes.every((o) => o.status === 'rejected' && /database down/.test(String(o.reason))),
  )
  assert.equal(flight.size, 0)
  assert.equal(await flight.run('item:1', async () => 'recovered'), 'recovered')
})

test('a loader that throws synchronously rejects the shared promise instead of throwing', async () => {
  const flight = singleFlight<string>()
  const promise = flight.run('k', () => {
    throw new Error('sync failure')
  })
  await assert.rejects(promise, /sync failure/)
  assert.equal(flight.size, 0)
})

test('a call after the first settled starts a new load', async () => {
  const flight = singleFlight<number>()
  let loads = 0
  const load = async () => ++loads
  assert.equal(await flight.run('k', load), 1)
  assert.equal(await flight.run('k', load), 2)
})
