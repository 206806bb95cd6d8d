import { parseArgs } from 'node:util'
import { isAppError } from '../shared/errors.ts'
import { runPipeline } from './run-pipeline.ts'

/**
 * A standalone entry for manual runs and for the memory test (which reads the JSON summary on
 * the last line with --json). The servekit CLI's `pipeline` command calls runPipeline() itself.
 *
 *   npx node src/pipeline/cli.ts --input DIR --output DIR [--batch-size N]
 *     [--progress auto|bar|lines|none] [--overwrite] [--json]
 */
const { values } = parseArgs({
  options: {
    input: { type: 'string' },
    output: { type: 'string' },
    'batch-size': { type: 'string' },
    progress: { type: 'string', default: 'auto' },
    overwrite: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
})
const progress = values.progress
if (
  !values.input ||
  !values.output ||
  !(progress === 'auto' || progress === 'bar' || progress === 'lines' || progress === 'none')
) {
  process.stderr.write(
    'usage: node src/pipeline/cli.ts --input DIR --output DIR [--batch-size N] [--progress auto|bar|lines|none] [--overwrite] [--json]\n',
  )
  process.exitCode = 2
} else {
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  try {
    const summary = await runPipeline({
      input: values.input,
      output: values.output,
      batchSize: values['batch-size'] === undefined ? undefined : Number(values['batch-size']),
      progress,
      overwrite: values.overwrite,
      signal: controller.signal,
    })
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`)
    process.exitCode = summary.failedFiles.length > 0 ? 1 : 0
  } catch (error) {
    process.stderr.write(`pipeline: ${(error as Error).message}\n`)
    process.exitCode = isAppError(error) && error.kind === 'invalid' ? 2 : 1
  }
}
