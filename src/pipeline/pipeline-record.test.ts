import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BLANK, transformLine } from './pipeline-record.ts'

const good = {
  user_id: '123',
  action: 'click',
  timestamp: '2026-01-01T10:00:00.000Z',
  device: { type: 'mobile', os: 'ios' },
  session_id: 'abc',
  properties: { page: '/x' },
}

test('a valid event keeps user_id, action, timestamp and device type only', () => {
  const verdict = transformLine(JSON.stringify(good))
  assert.deepEqual(verdict, {
    isValid: true,
    line: '{"user_id":"123","action":"click","timestamp":"2026-01-01T10:00:00.000Z","device_type":"mobile"}',
  })
})

test('a numeric user_id becomes a string', () => {
  const verdict = transformLine(JSON.stringify({ ...good, user_id: 9007199254740991 }))
  assert.ok(verdict.isValid)
  assert.equal(JSON.parse(verdict.line).user_id, '9007199254740991')
})

test('each kind of bad line gets its reason', () => {
  const cases: Array<[string, string]> = [
    ['{"user_id":', 'invalid JSON'],
    ['[1,2]', 'not an object'],
    ['null', 'not an object'],
    ['"text"', 'not an object'],
    [JSON.stringify({ ...good, user_id: undefined }), 'missing user_id'],
    [JSON.stringify({ ...good, device: undefined }), 'missing device'],
    [JSON.stringify({ ...good, device: { os: 'ios' } }), 'missing device.type'],
    [JSON.stringify({ ...good, action: 42 }), 'invalid action'],
    [JSON.stringify({ ...good, timestamp: 'yesterday' }), 'invalid timestamp'],
    [JSON.stringify({ ...good, user_id: -1 }), 'invalid user_id'],
    [JSON.stringify({ ...good, device: { type: '' } }), 'invalid device.type'],
  ]
  for (const [line, reason] of cases)
    assert.deepEqual(transformLine(line), { isValid: false, reason }, line)
})

test('a blank line is neither good nor bad', () => {
  assert.equal(transformLine(''), BLANK)
  assert.equal(transformLine('   \t'), BLANK)
})
