import type { Writable } from 'node:stream'
import { formatSummary, type PipelineOptions, runPipeline } from '../pipeline/index.ts'
import { isAppError } from '../shared/errors.ts'

export interface PipelineCommandOptions {
  input: string
  output: string
  batchSize?: number
  progress?: PipelineOptions['progress']
  overwrite?: boolean
  /** Progress and the summary; default stdout. */
  out?: Writable
  /** Errors; default stderr. */
  err?: Writable
}

/** Exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C). */
export const INTERRUPTED_EXIT_CODE = 130

/**
 * `pipeline --input DIR --output DIR`: runPipeline with progress on the terminal and a summary
 * at the end. SIGINT or SIGTERM stops it (finished parts stay, the unfinished one is removed).
 * Resolves to the exit code: 0 done, 1 some input files could not be read to the end or the
 * output failed, 2 bad input folder or options (or parts of an earlier run in the way),
 * 130 interrupted. Needs no config, database or container: it only touches files.
 */
export async function pipelineCommand(options: PipelineCommandOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const err = options.err ?? process.stderr
  const stop = new AbortController()
  const onSignal = () => stop.abort(new Error('interrupted'))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    out.write(`pipeline: ${options.input} -> ${options.output}\n`)
    const summary = await runPipeline({
      input: options.input,
      output: options.output,
      batchSize: options.batchSize,
      progress: options.progress ?? 'auto',
      progressOutput: out as Writable & { isTTY?: boolean },
      overwrite: options.overwrite ?? false,
      signal: stop.signal,
    })
    // Without progress output runPipeline prints no summary either; a command always reports.
    if (options.progress === 'none') out.write(`${formatSummary(summary)}\n`)
    return summary.failedFiles.length > 0 ? 1 : 0
  } catch (error) {
    if (stop.signal.aborted) {
      err.write('pipeline: interrupted; the finished parts are kept\n')
      return INTERRUPTED_EXIT_CODE
    }
    err.write(`pipeline: ${(error as Error).message}\n`)
    return isAppError(error) && (error.kind === 'invalid' || error.kind === 'conflict') ? 2 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
