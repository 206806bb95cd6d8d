import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LineSplitter, TOO_LONG } from './line-splitter.ts'

function split(chunks: Array<string | Buffer>, maxLineBytes = 1024): Array<string | symbol> {
  const splitter = new LineSplitter(maxLineBytes)
  const lines: Array<string | symbol> = []
  const onLine = (line: string | symbol) => lines.push(line)
  for (const chunk of chunks)
    splitter.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk), onLine)
  splitter.end(onLine)
  return lines
}

test('lines split within and across chunks; CRLF and a missing last newline are handled', () => {
  assert.deepEqual(split(['a\nb', 'c\r\n', 'd']), ['a', 'bc', 'd'])
  assert.deepEqual(split(['one\n', '\n', 'two\n']), ['one', '', 'two'])
  assert.deepEqual(split(['x', 'y', 'z', '\n']), ['xyz'])
})

test('a multi-byte character cut between chunks is decoded whole', () => {
  const bytes = Buffer.from('é€😀\n', 'utf8')
  const chunks = [...bytes].map((byte) => Buffer.from([byte]))
  assert.deepEqual(split(chunks), ['é€😀'])
})

test('a line over the limit is reported once as TOO_LONG and skipped, inside or across chunks', () => {
  const long = 'x'.repeat(50)
  assert.deepEqual(split([`ok\n${long}\nnext\n`], 10), ['ok', TOO_LONG, 'next'])
  assert.deepEqual(split(['ok\nxxxxxx', 'xxxxxx', 'xxxxxx\nnext\n'], 10), ['ok', TOO_LONG, 'next'])
  assert.deepEqual(split(['xxxxxx', 'xxxxxxxxxxxxx'], 10), [TOO_LONG])
})
