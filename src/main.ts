import { parseArgs } from 'node:util'
import type { MigrateAction } from './commands/migrate.ts'
import { ConfigError, loadConfig } from './config/index.ts'

// Commands are imported when chosen: each loads only its own modules (the pipeline, for one,
// stays far from the HTTP server, the database drivers and Redis, and from their memory).
const USAGE = `Usage: servekit <command> [options]

Commands:
  serve              serve HTTP (the default)
                       --host <addr>   listen address (HOST, default 127.0.0.1)
                       --port <n>      listen port (PORT, default 8000)
                       --workers <n>   worker processes, 0 = one per CPU core; more than
                                       one needs REDIS_URL (WEB_WORKERS, default 1;
                                       one per core in prod with REDIS_URL)
  migrate up         apply every pending migration
  migrate down       revert the last applied migration
                       --all           revert every applied migration
  migrate status     list the migrations and when each was applied
  seed               insert demo items
                       --count <n>     how many (default 10000)
  worker             run background tasks from Redis (WORKER_CONCURRENCY at a time)
  scheduler          register the schedule table in Redis; workers run the firings
                       (both need REDIS_URL: without it, serve runs tasks itself)
  pipeline           turn *.json.gz event files into gzip batches of the kept fields
                       --input <dir>   the input files (required)
                       --output <dir>  where part-00001.jsonl.gz, ... go (required)
                       --batch-size <n>  records per part (default 100000)
                       --progress <auto|bar|lines|none>  (default auto)
                       --overwrite     replace parts of an earlier run
                       (exit code 130 when interrupted)

Options:
  -h, --help         show this help

Configuration comes from the environment, .env and configs/.env.<APP_ENV>; see .env.example.
Exit codes: 0 done, 1 failure, 2 bad configuration or usage.`

/** A mistake on the command line: exit code 2 with the usage. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      host: { type: 'string' },
      port: { type: 'string' },
      workers: { type: 'string' },
      all: { type: 'boolean' },
      count: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
      'batch-size': { type: 'string' },
      progress: { type: 'string' },
      overwrite: { type: 'boolean' },
    },
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const [command = 'serve', ...rest] = positionals
  const action = command === 'migrate' ? rest.shift() : undefined
  if (rest.length > 0) throw new UsageError(`unexpected argument: ${rest[0]}`)
  // Files in, files out: the pipeline needs no configuration.
  if (command === 'pipeline') {
    const { pipelineCommand } = await import('./commands/pipeline.ts')
    return pipelineCommand(pipelineOptions(values))
  }

  const config = loadConfig(process.env)
  switch (command) {
    case 'serve': {
      const port = values.port === undefined ? undefined : Number(values.port)
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
        throw new ConfigError(
          `--port=${JSON.stringify(values.port)} is invalid: expected an integer from 0 to 65535`,
        )
      }
      const workers = values.workers === undefined ? undefined : Number(values.workers)
      if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0 && workers <= 256)) {
        throw new UsageError(
          `--workers=${JSON.stringify(values.workers)} is invalid: expected an integer from 0 to 256`,
        )
      }
      const { serve } = await import('./commands/serve.ts')
      return serve(config, { host: values.host, port, workers })
    }
    case 'migrate': {
      if (action !== 'up' && action !== 'down' && action !== 'status') {
        throw new UsageError(
          action === undefined
            ? 'migrate needs an action: up, down or status'
            : `unknown migrate action: ${action}`,
        )
      }
      const { migrate } = await import('./commands/migrate.ts')
      return migrate(config, action satisfies MigrateAction, { all: values.all })
    }
    case 'seed': {
      const count = values.count === undefined ? 10_000 : Number(values.count)
      if (!(Number.isInteger(count) && count >= 1 && count <= 10_000_000)) {
        throw new UsageError(
          `--count=${JSON.stringify(values.count)} is invalid: expected an integer from 1 to 10000000`,
        )
      }
      return (await import('./commands/seed.ts')).seed(config, { count })
    }
    case 'worker':
      return (await import('./commands/worker.ts')).worker(config)
    case 'scheduler':
      return (await import('./commands/scheduler.ts')).scheduler(config)
    default:
      throw new UsageError(`unknown command: ${command}`)
  }
}

/** The pipeline command's flags, checked. */
function pipelineOptions(values: {
  input?: string
  output?: string
  'batch-size'?: string
  progress?: string
  overwrite?: boolean
}) {
  const { input, output, progress = 'auto' } = values
  if (!input || !output) throw new UsageError('pipeline needs --input <dir> and --output <dir>')
  const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size'])
  if (
    batchSize !== undefined &&
    !(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 100_000_000)
  ) {
    throw new UsageError(
      `--batch-size=${JSON.stringify(values['batch-size'])} is invalid: expected an integer from 1 to 100000000`,
    )
  }
  if (progress !== 'auto' && progress !== 'bar' && progress !== 'lines' && progress !== 'none') {
    throw new UsageError(
      `--progress=${JSON.stringify(progress)} is invalid: expected auto, bar, lines or none`,
    )
  }
  return { input, output, batchSize, progress, overwrite: values.overwrite === true } as const
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`config error: ${error.message}\n`)
    process.exitCode = 2
  } else if (
    error instanceof UsageError ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  ) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`)
    process.exitCode = 2
  } else {
    process.stderr.write(`fatal: ${(error as Error).stack ?? String(error)}\n`)
    process.exitCode = 1
  }
}
// Timers of libraries (pools, reconnects) must not keep a finished command alive.
process.exit()
