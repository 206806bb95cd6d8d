import assert from 'node:assert/strict'
import { test } from 'node:test'
import { filenameFromContentDisposition as parse } from './content-disposition.ts'

test('a quoted filename is read, escapes included', () => {
  assert.equal(parse('attachment; filename="report 2026.pdf"'), 'report 2026.pdf')
  assert.equal(parse('attachment; filename="say \\"hi\\".txt"'), 'say "hi".txt')
  assert.equal(parse('inline; FILENAME="upper.txt"'), 'upper.txt')
})

test('a token filename is read; a lenient unquoted one too', () => {
  assert.equal(parse('attachment; filename=data.csv'), 'data.csv')
  assert.equal(parse('attachment; filename=my file.csv; size=3'), 'my file.csv')
})

test('filename* (RFC 8187) wins over filename, whatever the order', () => {
  assert.equal(
    parse(`attachment; filename="EURO rates.txt"; filename*=UTF-8''%e2%82%ac%20rates.txt`),
    '€ rates.txt',
  )
  assert.equal(
    parse(`attachment; filename*=UTF-8'en'%E2%82%AC%20rates.txt; filename="EURO rates.txt"`),
    '€ rates.txt',
  )
  assert.equal(parse(`attachment; filename*=iso-8859-1'de'M%FCnchen.txt`), 'München.txt')
})

test('a broken filename* falls back to filename', () => {
  assert.equal(parse(`attachment; filename*=UTF-8''%ZZbad; filename="plain.txt"`), 'plain.txt')
  assert.equal(parse(`attachment; filename*=UTF-8''%FF%FE; filename="plain.txt"`), 'plain.txt')
  assert.equal(parse(`attachment; filename*=KOI8-R''abc; filename="plain.txt"`), 'plain.txt')
})

test('directories, control characters and dot names are stripped from the name', () => {
  assert.equal(parse('attachment; filename="../../etc/passwd"'), 'passwd')
  assert.equal(parse('attachment; filename="C:\\\\temp\\\\evil.exe"'), 'evil.exe')
  assert.equal(parse(`attachment; filename*=UTF-8''..%2F..%2Fx%0A.txt`), 'x.txt')
  assert.equal(parse('attachment; filename=".."'), undefined)
})

test('no header, no filename parameter or garbage gives undefined', () => {
  assert.equal(parse(undefined), undefined)
  assert.equal(parse(''), undefined)
  assert.equal(parse('attachment'), undefined)
  assert.equal(parse('attachment; size=10'), undefined)
  assert.equal(parse('; filename="x"'), undefined)
  assert.equal(parse('attachment; filename="unterminated'), undefined)
})
