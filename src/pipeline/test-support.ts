import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { LineSplitter, TOO_LONG } from './line-splitter.ts'
import type { OutputEvent } from './pipeline-record.ts'

/** Calls `onEvent` for every record of an output part (tests only). */
export async function readPart(path: string, onEvent: (event: OutputEvent) => void): Promise<void> {
  const splitter = new LineSplitter(1024 * 1024)
  const onLine = (line: string | typeof TOO_LONG) => {
    if (line === TOO_LONG) throw new Error(`${path}: a line too long`)
    onEvent(JSON.parse(line) as OutputEvent)
  }
  await pipeline(createReadStream(path), createGunzip(), async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) splitter.push(chunk, onLine)
    splitter.end(onLine)
  })
}
