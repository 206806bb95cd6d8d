import { createReadStream } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { AppError } from '../shared/errors.ts'
import { BatchWriter, PART_PATTERN } from './batch-writer.ts'
import { LineSplitter, TOO_LONG } from './line-splitter.ts'
import { BLANK, transformLine } from './pipeline-record.ts'
import {
  type ProgressMode,
  type ProgressOutput,
  type ProgressState,
  startProgress,
} from './progress.ts'

export interface PipelineOptions {
  /** Folder of *.json.gz (or *.jsonl.gz) files of JSON lines, read in name order. */
  input: string
  /** Folder for part-00001.jsonl.gz, ...; created if missing. */
  output: string
  /** Records per output part; default 100,000. */
  batchSize?: number
  /** 'auto' (the default): a bar when the output is a terminal, plain lines otherwise. */
  progress?: 'auto' | ProgressMode
  /** Where progress and the summary go; default process.stdout. */
  progressOutput?: ProgressOutput
  /** Time between plain progress lines; default 1000 ms. */
  progressIntervalMs?: number
  /** gzip level of the output, 1 (fast) to 9 (small); default 6. */
  gzipLevel?: number
  /** Replace parts left in the output folder by an earlier run instead of refusing. */
  overwrite?: boolean
  /** A longer line is counted bad and skipped; default 1 MiB. */
  maxLineBytes?: number
  /** Stops the run: the unfinished part is removed, finished parts stay. */
  signal?: AbortSignal
}

export interface BadLine {
  file: string
  /** 1-based line number in the decompressed file. */
  line: number
  reason: string
}

export interface PipelineSummary {
  files: number
  good: number
  bad: number
  batches: number
  seconds: number
  /** Input lines (good and bad) per second. */
  recordsPerSecond: number
  badByReason: Record<string, number>
  /** The first bad lines, for the report. */
  badSamples: BadLine[]
  /** Files that could not be read to the end (e.g. truncated gzip); their earlier lines count. */
  failedFiles: Array<{ file: string; error: string }>
  outputs: string[]
  /** Peak resident memory of this process so far. */
  peakRssMb: number
}

/** The output side failed (disk full, permissions): fatal, unlike a bad input file. */
class OutputFailure extends Error {
  override name = 'OutputFailure'
}

const INPUT_PATTERN = /\.jsonl?\.gz$/
const BAD_SAMPLES = 20

/**
 * Reads every gzip JSON-lines file of `input`, keeps user_id, action, timestamp and device type
 * of each valid event, and writes them to gzip parts of `batchSize` records in `output`.
 * Streams end to end with backpressure, so memory stays flat whatever the input size. A bad
 * line is counted and reported, never fatal.
 */
export async function runPipeline(options: PipelineOptions): Promise<PipelineSummary> {
  const batchSize = options.batchSize ?? 100_000
  const gzipLevel = options.gzipLevel ?? 6
  const maxLineBytes = options.maxLineBytes ?? 1024 * 1024
  checkInteger('batchSize', batchSize, 1, 100_000_000)
  checkInteger('gzipLevel', gzipLevel, 1, 9)
  checkInteger('maxLineBytes', maxLineBytes, 1024, 1024 * 1024 * 1024)

  const inputs = await listInputs(options.input)
  await prepareOutput(options.output, options.overwrite ?? false)
  const sizes = await Promise.all(inputs.map(async (path) => (await stat(path)).size))

  const startedMs = performance.now()
  const state: ProgressState = {
    bytesDone: 0,
    bytesTotal: sizes.reduce((sum, size) => sum + size, 0),
    good: 0,
    bad: 0,
    fileIndex: 0,
    files: inputs.length,
    startedMs,
  }
  const output = options.progressOutput ?? process.stdout
  const mode = options.progress ?? 'auto'
  const progress = startProgress(
    state,
    mode === 'auto' ? (output.isTTY ? 'bar' : 'lines') : mode,
    output,
    options.progressIntervalMs ?? 1000,
  )
  const writer = new BatchWriter(options.output, batchSize, gzipLevel)
  const badByReason: Record<string, number> = {}
  const badSamples: BadLine[] = []
  const failedFiles: PipelineSummary['failedFiles'] = []

  try {
    for (const [index, path] of inputs.entries()) {
      state.fileIndex = index + 1
      const bytesBefore = state.bytesDone
      const file = basename(path)
      const countBad = (line: number, reason: string) => {
        state.bad++
        badByReason[reason] = (badByReason[reason] ?? 0) + 1
        if (badSamples.length < BAD_SAMPLES) badSamples.push({ file, line, reason })
      }
      try {
        await processFile(path, writer, maxLineBytes, state, bytesBefore, countBad, options.signal)
      } catch (error) {
        if (options.signal?.aborted || error instanceof OutputFailure) throw error
        failedFiles.push({ file, error: (error as Error).message })
      }
      state.bytesDone = bytesBefore + (sizes[index] ?? 0)
    }
    await writer.close()
  } catch (error) {
    await writer.abort()
    progress.stop()
    throw error
  }
  progress.stop()

  const seconds = (performance.now() - startedMs) / 1000
  const summary: PipelineSummary = {
    files: inputs.length,
    good: state.good,
    bad: state.bad,
    batches: writer.batches,
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSecond: Math.round((state.good + state.bad) / Math.max(seconds, 0.001)),
    badByReason,
    badSamples,
    failedFiles,
    outputs: writer.written.toSorted(),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  }
  if (mode !== 'none') output.write(`${formatSummary(summary)}\n`)
  return summary
}

async function processFile(
  path: string,
  writer: BatchWriter,
  maxLineBytes: number,
  state: ProgressState,
  bytesBefore: number,
  countBad: (line: number, reason: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const source = createReadStream(path, { highWaterMark: 256 * 1024 })
  const splitter = new LineSplitter(maxLineBytes)
  let lineNumber = 0
  let mustWait = false
  const onLine = (text: string | typeof TOO_LONG) => {
    lineNumber++
    if (text === TOO_LONG) return countBad(lineNumber, 'line too long')
    const verdict = transformLine(text)
    if (verdict.isValid) {
      state.good++
      if (writer.add(verdict.line)) mustWait = true
    } else if (verdict !== BLANK) {
      countBad(lineNumber, verdict.reason)
    }
  }
  await pipeline(
    source,
    createGunzip({ chunkSize: 64 * 1024 }),
    async (lines: AsyncIterable<Buffer>) => {
      for await (const chunk of lines) {
        splitter.push(chunk, onLine)
        state.bytesDone = bytesBefore + source.bytesRead
        // Backpressure: while the output cannot take more, stop reading the input.
        if (mustWait) {
          mustWait = false
          await writer.wait().catch((error: unknown) => {
            throw new OutputFailure(`writing the output failed: ${(error as Error).message}`, {
              cause: error,
            })
          })
        }
      }
      splitter.end(onLine)
    },
    signal ? { signal } : {},
  )
}

async function listInputs(dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    throw new AppError('invalid', 'PIPELINE_INPUT_NOT_FOUND', `cannot read input folder ${dir}`, {
      cause: error,
    })
  }
  return names
    .filter((name) => INPUT_PATTERN.test(name))
    .sort()
    .map((name) => join(dir, name))
}

async function prepareOutput(dir: string, overwrite: boolean): Promise<void> {
  await mkdir(dir, { recursive: true })
  const leftovers = (await readdir(dir)).filter(
    (name) => PART_PATTERN.test(name) || PART_PATTERN.test(name.replace(/\.tmp$/, '')),
  )
  if (leftovers.length === 0) return
  if (!overwrite) {
    throw new AppError(
      'conflict',
      'PIPELINE_OUTPUT_NOT_EMPTY',
      `${dir} already holds ${leftovers.length} part files; remove them or overwrite`,
    )
  }
  await Promise.all(leftovers.map((name) => rm(join(dir, name), { force: true })))
}

function checkInteger(name: string, value: number, minimum: number, maximum: number): void {
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new AppError(
      'invalid',
      'PIPELINE_INVALID_OPTION',
      `${name} must be an integer from ${minimum} to ${maximum}, got ${value}`,
    )
  }
}

/** The report printed at the end of a run. */
export function formatSummary(summary: PipelineSummary): string {
  const count = (value: number) => value.toLocaleString('en-US')
  const lines = [
    `pipeline: done: ${summary.files} files, ${count(summary.good)} good, ${count(summary.bad)} bad, ` +
      `${summary.batches} batches in ${summary.seconds.toFixed(1)} s ` +
      `(${count(summary.recordsPerSecond)} records/s), peak RSS ${summary.peakRssMb} MB`,
  ]
  const reasons = Object.entries(summary.badByReason).sort((a, b) => b[1] - a[1])
  if (reasons.length > 0)
    lines.push(
      `pipeline: bad lines: ${reasons.map(([reason, n]) => `${reason} ${count(n)}`).join(', ')}`,
    )
  for (const sample of summary.badSamples.slice(0, 5))
    lines.push(`pipeline:   ${sample.file}:${sample.line}: ${sample.reason}`)
  for (const failed of summary.failedFiles)
    lines.push(`pipeline: could not finish ${failed.file}: ${failed.error}`)
  return lines.join('\n')
}
