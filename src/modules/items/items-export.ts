import type { ItemRecord } from './items-service.ts'

/** The storage the export needs: live items after an id, in id order (keyset pagination). */
export interface ItemsExportSource {
  /** Up to `limit` live items with an id above `afterId` (from the first when undefined). */
  listAfter(afterId: string | undefined, limit: number): Promise<ItemRecord[]>
}

/** The slice of the items repository the default source uses. */
export interface ItemsLister {
  list(query: {
    where?: { id?: { gt: string } }
    orderBy?: ReadonlyArray<readonly ['id', 'asc']>
    limit?: number
  }): Promise<ItemRecord[]>
}

export interface ItemsExportDeps {
  source: ItemsExportSource
  /** Rows read per query. Default 1000. */
  batchSize?: number
  now?: () => Date
}

/** The CSV columns, in order: every public field of an item. */
export const CSV_COLUMNS = [
  'id',
  'name',
  'price',
  'description',
  'stock',
  'creator_id',
  'created_at',
  'updated_at',
] as const satisfies ReadonlyArray<keyof ItemRecord>

export type ItemsExport = ReturnType<typeof createItemsExport>

/**
 * The CSV export of every live item. Rows are read in id order a batch at a time (keyset
 * pagination: `id > last id seen`, which stays fast on every database however deep it goes,
 * unlike OFFSET) and each batch becomes one chunk: memory holds one batch, whatever the table's
 * size, and the next batch is read only when the client has taken the last one.
 */
export function createItemsExport({
  source,
  batchSize = 1000,
  now = () => new Date(),
}: ItemsExportDeps) {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be a positive integer')
  return {
    /** The download's file name, with the time of the export: `items-20260102-030405.csv`. */
    fileName(): string {
      const stamp = now()
        .toISOString()
        .replace(/\.\d+Z$/, '')
        .replaceAll(/[-:]/g, '')
        .replace('T', '-')
      return `items-${stamp}.csv`
    },

    /** The CSV text in chunks: the header line, then one chunk per batch of rows. */
    async *csvChunks(): AsyncGenerator<string> {
      yield csvLine(CSV_COLUMNS)
      let afterId: string | undefined
      for (;;) {
        const rows = await source.listAfter(afterId, batchSize)
        if (rows.length === 0) return
        let chunk = ''
        for (const row of rows) {
          // Prices are stored in cents: always two decimals, as money is written.
          chunk += csvLine(
            CSV_COLUMNS.map((column) => (column === 'price' ? row.price.toFixed(2) : row[column])),
          )
        }
        yield chunk
        afterId = rows[rows.length - 1]?.id
        if (rows.length < batchSize) return
      }
    },
  }
}

/** Keyset pages over the items repository. */
export function itemsExportSource(items: ItemsLister): ItemsExportSource {
  return {
    listAfter: (afterId, limit) =>
      items.list({
        ...(afterId === undefined ? {} : { where: { id: { gt: afterId } } }),
        orderBy: [['id', 'asc']],
        limit,
      }),
  }
}

/** One CSV record as RFC 4180 has it: fields joined by commas, ended by CRLF. */
export function csvLine(values: ReadonlyArray<string | number | null | undefined>): string {
  return `${values.map(csvField).join(',')}\r\n`
}

/**
 * One field. Text starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
 * `'`, so a spreadsheet shows it as text instead of running it as a formula (CSV injection, as
 * OWASP recommends); numbers are written as they are. A field holding a comma, a quote or a line
 * break is quoted, with quotes doubled (RFC 4180).
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return ''
  let text = typeof value === 'number' ? String(value) : value
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}
