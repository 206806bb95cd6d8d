import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseCron } from './cron.ts'

const at = (iso: string) => new Date(iso)
const next = (expression: string, after: string) =>
  parseCron(expression).next(at(after))?.toISOString()

test('five-field expressions give the next matching minute, in UTC', () => {
  assert.equal(next('*/15 * * * *', '2026-03-01T10:07:30Z'), '2026-03-01T10:15:00.000Z')
  assert.equal(next('*/15 * * * *', '2026-03-01T10:15:00Z'), '2026-03-01T10:30:00.000Z')
  assert.equal(next('0 3 * * *', '2026-03-01T10:00:00Z'), '2026-03-02T03:00:00.000Z')
  assert.equal(next('30 9 1 * *', '2026-12-15T00:00:00Z'), '2027-01-01T09:30:00.000Z')
  assert.equal(next('0 0 29 2 *', '2026-03-01T00:00:00Z'), '2028-02-29T00:00:00.000Z')
  assert.equal(next('0 12 * * MON-FRI', '2026-03-06T13:00:00Z'), '2026-03-09T12:00:00.000Z')
  assert.equal(next('0 0 * JAN,jul SUN', '2026-03-01T00:00:00Z'), '2026-07-05T00:00:00.000Z')
  assert.equal(next('5-10/5,59 * * * *', '2026-03-01T10:06:00Z'), '2026-03-01T10:10:00.000Z')
  assert.equal(next('0 0 * * 7', '2026-03-02T00:00:00Z'), '2026-03-08T00:00:00.000Z')
})

test('when both day fields are restricted, a day matching either runs (Vixie cron)', () => {
  // The 13th, or any Friday.
  assert.equal(next('0 0 13 * 5', '2026-03-01T00:00:00Z'), '2026-03-06T00:00:00.000Z')
  assert.equal(next('0 0 13 * 5', '2026-03-10T00:00:00Z'), '2026-03-13T00:00:00.000Z')
})

test('six fields put seconds first', () => {
  assert.equal(next('*/10 * * * * *', '2026-03-01T10:00:01.500Z'), '2026-03-01T10:00:10.000Z')
  assert.equal(next('0 */5 * * * *', '2026-03-01T10:00:00Z'), '2026-03-01T10:05:00.000Z')
})

test('a bad expression fails naming the field; one that never matches is refused', () => {
  assert.throws(() => parseCron('* * * *'), /must have 5 or 6 fields/)
  assert.throws(() => parseCron('60 * * * *'), /minute "60" is not a value from 0 to 59/)
  assert.throws(() => parseCron('* 5-2 * * *'), /hour "5-2" has a range that runs backwards/)
  assert.throws(() => parseCron('*/0 * * * *'), /bad step/)
  assert.throws(() => parseCron('* * * FOO *'), /month/)
  assert.throws(() => parseCron('0 0 31 2 *'), /never matches/)
})
