/** What a splitter hands over per line: its text, or TOO_LONG for a line past the limit. */
export const TOO_LONG = Symbol('line too long')
export type LineHandler = (text: string | typeof TOO_LONG) => void

/**
 * Cuts a byte stream into lines without decoding it whole: "\n" never occurs inside a UTF-8
 * multi-byte character, so splitting the bytes is safe. A line longer than `maxLineBytes` is
 * reported once as TOO_LONG and skipped up to its newline, so one endless line cannot take all
 * the memory. A trailing "\r" (CRLF files) is dropped.
 */
export class LineSplitter {
  readonly #maxLineBytes: number
  #carry: Buffer[] = []
  #carryBytes = 0
  #isSkipping = false

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes
  }

  /** Calls `onLine` for every line `chunk` completes. */
  push(chunk: Buffer, onLine: LineHandler): void {
    let start = 0
    for (;;) {
      const newline = chunk.indexOf(10, start)
      if (newline === -1) {
        this.#hold(chunk, start, chunk.length, onLine)
        return
      }
      if (this.#carryBytes === 0 && !this.#isSkipping) {
        // The common case: the whole line is inside this chunk; no copy.
        onLine(newline - start > this.#maxLineBytes ? TOO_LONG : decode(chunk, start, newline))
      } else {
        this.#hold(chunk, start, newline, onLine)
        if (!this.#isSkipping) onLine(this.#takeCarry())
        this.#reset()
      }
      start = newline + 1
    }
  }

  /** Hands over a last line that had no final newline. */
  end(onLine: LineHandler): void {
    if (!this.#isSkipping && this.#carryBytes > 0) onLine(this.#takeCarry())
    this.#reset()
  }

  #hold(chunk: Buffer, start: number, end: number, onLine: LineHandler): void {
    if (this.#isSkipping || end === start) return
    if (this.#carryBytes + (end - start) > this.#maxLineBytes) {
      this.#reset()
      this.#isSkipping = true
      onLine(TOO_LONG)
      return
    }
    // A copy: the stream may reuse the chunk's memory once this call returns.
    this.#carry.push(Buffer.from(chunk.subarray(start, end)))
    this.#carryBytes += end - start
  }

  #takeCarry(): string {
    const joined = Buffer.concat(this.#carry, this.#carryBytes)
    return decode(joined, 0, joined.length)
  }

  #reset(): void {
    this.#carry = []
    this.#carryBytes = 0
    this.#isSkipping = false
  }
}

function decode(buffer: Buffer, start: number, end: number): string {
  const last = end > start && buffer[end - 1] === 13 ? end - 1 : end
  return buffer.toString('utf8', start, last)
}
