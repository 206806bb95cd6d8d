import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip, type Gzip } from 'node:zlib'

/** part-00001.jsonl.gz, part-00002.jsonl.gz, ... */
export function partName(index: number): string {
  return `part-${String(index).padStart(5, '0')}.jsonl.gz`
}

export const PART_PATTERN = /^part-\d{5,}\.jsonl\.gz$/

const FLUSH_CHARS = 64 * 1024

interface OpenPart {
  gzip: Gzip
  tmpPath: string
  path: string
  done: Promise<void>
}

/**
 * Writes lines into gzip parts of `batchSize` lines each. Compression runs in zlib's async API,
 * that is on the libuv threadpool, off the event loop. Each part is written as `<name>.tmp`
 * and renamed when complete, so a part that exists is whole.
 *
 * add() is synchronous for speed; when it returns true the caller must `await wait()` before
 * adding more (gzip wants to drain, or parts are being finished), which is the backpressure.
 */
export class BatchWriter {
  readonly #dir: string
  readonly #batchSize: number
  readonly #gzipLevel: number
  #current: OpenPart | undefined
  #finishing: Promise<void>[] = []
  #pending = ''
  #linesInPart = 0
  #parts = 0
  readonly written: string[] = []

  constructor(dir: string, batchSize: number, gzipLevel: number) {
    this.#dir = dir
    this.#batchSize = batchSize
    this.#gzipLevel = gzipLevel
  }

  /** Parts started so far. */
  get batches(): number {
    return this.#parts
  }

  /** Queues one line (without newline); true means: await wait() now. */
  add(line: string): boolean {
    this.#pending += `${line}\n`
    this.#linesInPart++
    if (this.#linesInPart === this.#batchSize) {
      this.#flush()
      this.#endPart()
      return true
    }
    if (this.#pending.length >= FLUSH_CHARS) return !this.#flush()
    return false
  }

  /** Resolves when gzip has room again and finished parts are renamed. */
  async wait(): Promise<void> {
    const finishing = this.#finishing
    this.#finishing = []
    await Promise.all(finishing)
    const gzip = this.#current?.gzip
    if (gzip?.writableNeedDrain) await once(gzip, 'drain')
  }

  /** Writes what is left and finishes the last part. */
  async close(): Promise<void> {
    this.#flush()
    this.#endPart()
    await this.wait()
  }

  /** Stops: removes the unfinished part, keeps the finished ones. */
  async abort(): Promise<void> {
    const current = this.#current
    this.#current = undefined
    if (current) {
      current.gzip.destroy()
      await current.done.catch(() => {})
      await rm(current.tmpPath, { force: true })
    }
    await Promise.allSettled(this.#finishing)
  }

  /** Hands the pending text to gzip; false when gzip asks to drain first. */
  #flush(): boolean {
    if (this.#pending === '') return true
    const part = this.#current ?? this.#open()
    const text = this.#pending
    this.#pending = ''
    return part.gzip.write(text)
  }

  #open(): OpenPart {
    this.#parts++
    const path = join(this.#dir, partName(this.#parts))
    const tmpPath = `${path}.tmp`
    const gzip = createGzip({ level: this.#gzipLevel })
    const done = pipeline(gzip, createWriteStream(tmpPath))
    // Handled by wait() or abort(); this keeps an early failure from being "unhandled".
    done.catch(() => {})
    this.#current = { gzip, tmpPath, path, done }
    return this.#current
  }

  #endPart(): void {
    const part = this.#current
    this.#current = undefined
    this.#linesInPart = 0
    if (!part) return
    part.gzip.end()
    this.#finishing.push(
      part.done.then(async () => {
        await rename(part.tmpPath, part.path)
        this.written.push(part.path)
      }),
    )
  }
}
