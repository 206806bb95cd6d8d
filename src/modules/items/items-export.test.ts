import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestApp } from '../../../test/helpers/app.ts'
import { createTestDatabase, dialectCases, openTestDatabase } from '../../../test/helpers/db.ts'
import { createSnowflake } from '../../shared/ids/index.ts'
import {
  CSV_COLUMNS,
  createItemsExport,
  csvField,
  csvLine,
  type ItemsExportSource,
  itemsExportSource,
} from './items-export.ts'
import { createItemsRepository } from './items-repository.ts'
import type { ItemRecord } from './items-service.ts'

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

/** RFC 4180 parsing, to read back what the export wrote. */
function parseCsv(text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let index = 0
  let isQuoted = false
  while (index < text.length) {
    const char = text[index] as string
    if (isQuoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"'
        index += 2
        continue
      }
      if (char === '"') isQuoted = false
      else field += char
      index += 1
      continue
    }
    if (char === '"') isQuoted = true
    else if (char === ',') {
      record.push(field)
      field = ''
    } else if (char === '\r' && text[index + 1] === '\n') {
      record.push(field)
      records.push(record)
      record = []
      field = ''
      index += 1
    } else field += char
    index += 1
  }
  assert.equal(field, '', 'the text ends with CRLF')
  return records
}

const TRICKY_NAMES = [
  'Plain',
  'Comma, inside',
  'Quote " inside',
  'Line\nbreak',
  'CR\r\nLF',
  '=HYPERLINK("http://evil.example","click")',
  '+1+2',
  '-2+3',
  '@SUM(A1:A2)',
  '\tTabbed',
  'Ünïcödé ✓ 漢字',
]

describe('csvField', () => {
  test('quotes fields with a comma, a quote or a line break, doubling quotes (RFC 4180)', () => {
    assert.equal(csvField('plain'), 'plain')
    assert.equal(csvField('a,b'), '"a,b"')
    assert.equal(csvField('say "hi"'), '"say ""hi"""')
    assert.equal(csvField('two\nlines'), '"two\nlines"')
    assert.equal(csvField('cr\rhere'), '"cr\rhere"')
    assert.equal(csvField(''), '')
    assert.equal(csvField(null), '')
    assert.equal(csvField(undefined), '')
    assert.equal(csvField(12.5), '12.5')
  })

  test("prefixes text a spreadsheet would run as a formula with '", () => {
    assert.equal(csvField('=1+1'), "'=1+1")
    assert.equal(csvField('+1'), "'+1")
    assert.equal(csvField('-1'), "'-1")
    assert.equal(csvField('@cmd'), "'@cmd")
    assert.equal(csvField('\tx'), "'\tx")
    assert.equal(csvField('=A1,B1'), `"'=A1,B1"`)
    assert.equal(csvField('a=b'), 'a=b')
    assert.equal(csvField(-1), '-1', 'numbers are written as they are')
  })

  test('csvLine joins with commas and ends with CRLF', () => {
    assert.equal(csvLine(['a', 1, null, 'b,c']), 'a,1,,"b,c"\r\n')
  })
})

test('the file name carries the time of the export', () => {
  const itemsExport = createItemsExport({
    source: { listAfter: async () => [] },
    now: () => new Date('2026-01-02T03:04:05.678Z'),
  })
  assert.equal(itemsExport.fileName(), 'items-20260102-030405.csv')
  assert.throws(() => createItemsExport({ source: { listAfter: async () => [] }, batchSize: 0 }))
})

test('a consumer that stops reading stops the reading of batches', async () => {
  let calls = 0
  const source: ItemsExportSource = {
    async listAfter(_afterId, limit) {
      calls += 1
      return Array.from({ length: limit }, (_, index) => fakeItem(String(calls * 1000 + index)))
    },
  }
  const stream = Readable.from(createItemsExport({ source, batchSize: 10 }).csvChunks())
  const iterator = stream[Symbol.asyncIterator]()
  await iterator.next()
  await iterator.next()
  stream.destroy()
  await sleep(50)
  assert.ok(calls <= 3, `${calls} batches read after the consumer stopped at the second chunk`)
})

for (const { dialect, options } of await dialectCases()) {
  test(
    `on ${dialect}, the export reads every live item once, in id order, across batches`,
    options,
    async (t) => {
      const { handle } = await openTestDatabase(t, dialect)
      const items = createItemsRepository({ db: handle.db, ids: createSnowflake({ workerId: 1 }) })
      const created: ItemRecord[] = []
      for (const [index, name] of TRICKY_NAMES.entries()) {
        created.push(
          await items.create(
            {
              name,
              price: 1 + index / 4,
              description: index % 2 ? `desc, ${name}` : null,
              stock: index,
            },
            null,
          ),
        )
      }
      const deleted = created[2] as ItemRecord
      await items.softDelete(deleted.id, null)

      const itemsExport = createItemsExport({ source: itemsExportSource(items), batchSize: 3 })
      const chunks: string[] = []
      for await (const chunk of itemsExport.csvChunks()) chunks.push(chunk)
      assert.equal(chunks.length, 1 + Math.ceil((TRICKY_NAMES.length - 1) / 3))

      const [header, ...rows] = parseCsv(chunks.join(''))
      assert.deepEqual(header, [...CSV_COLUMNS])
      const live = created.filter((item) => item.id !== deleted.id)
      assert.deepEqual(
        rows.map((row) => row[0]),
        live.map((item) => item.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
      )
      for (const row of rows) {
        const item = live.find((candidate) => candidate.id === row[0]) as ItemRecord
        const guarded = /^[=+\-@\t\r]/.test(item.name) ? `'${item.name}` : item.name
        assert.equal(row[1], guarded)
        assert.equal(row[2], item.price.toFixed(2))
        assert.equal(row[4], String(item.stock))
        assert.equal(row[3], item.description ?? '')
      }
    },
  )
}

test('GET /api/items/export.csv streams every live item as an attachment', async (t) => {
  const databaseUrl = await createTestDatabase(t, 'sqlite')
  const { baseUrl, container } = await buildTestApp(t, {
    DATABASE_URL: databaseUrl,
    ...NO_SHEDDING,
  })
  const items = createItemsRepository({ db: container.db.db, ids: container.ids })
  const count = 2345
  await items.insertMany(
    Array.from({ length: count }, (_, index) => ({
      name: index === 7 ? '=cmd|"/c calc"!A1' : `Item ${index}, "quoted"`,
      price: 10 + index / 100,
      description: null,
      stock: index % 50,
    })),
    null,
  )

  const response = await fetch(`${baseUrl}/api/items/export.csv`)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/csv; charset=utf-8')
  assert.match(
    response.headers.get('content-disposition') ?? '',
    /^attachment; filename="items-\d{8}-\d{6}\.csv"$/,
  )
  assert.equal(response.headers.get('transfer-encoding'), 'chunked', 'streamed, not buffered')
  const [header, ...rows] = parseCsv(await response.text())
  assert.deepEqual(header, [...CSV_COLUMNS])
  assert.equal(rows.length, count)
  assert.equal(new Set(rows.map((row) => row[0])).size, count)
  assert.ok(rows.some((row) => row[1] === `'=cmd|"/c calc"!A1`))
  assert.ok(rows.some((row) => row[1] === 'Item 8, "quoted"'))

  const listed = await (await fetch(`${baseUrl}/api/items?limit=1`)).json()
  assert.equal((listed as { total: number }).total, count)
})

function fakeItem(id: string): ItemRecord {
  return {
    id,
    name: `n${id}`,
    price: 1,
    description: null,
    stock: 1,
    creator_id: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: null,
  }
}
