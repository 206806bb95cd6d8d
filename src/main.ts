import { parseArgs } from 'node:util'
import { type MigrateAction, migrate } from './commands/migrate.ts'
import { seed } from './commands/seed.ts'
import { serve } from './commands/serve.ts'
import { ConfigError, loadConfig } from './config/index.ts'

const USAGE = `Usage: servekit <command> [options]

Commands:
  serve              serve HTTP (the default)
                       --host <addr>   listen address (HOST, default 127.0.0.1)
                       --port <n>      listen port (PORT, default 8000)
  migrate up         apply every pending migration
  migrate down       revert the last applied migration
                       --all           revert every applied migration
  migrate status     list the migrations and when each was applied
  seed               insert demo items
                       --count <n>     how many (default 10000)

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
      all: { type: 'boolean' },
      count: { type: 'string' },
    },
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const [command = 'serve', ...rest] = positionals
  const action = command === 'migrate' ? rest.shift() : undefined
  if (rest.length > 0) throw new UsageError(`unexpected argument: ${rest[0]}`)

  const config = loadConfig(process.env)
  switch (command) {
    case 'serve': {
      const port = values.port === undefined ? undefined : Number(values.port)
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
        throw new ConfigError(
          `--port=${JSON.stringify(values.port)} is invalid: expected an integer from 0 to 65535`,
        )
      }
      return serve(config, { host: values.host, port })
    }
    case 'migrate':
      if (action !== 'up' && action !== 'down' && action !== 'status') {
        throw new UsageError(
          action === undefined
            ? 'migrate needs an action: up, down or status'
            : `unknown migrate action: ${action}`,
        )
      }
      return migrate(config, action satisfies MigrateAction, { all: values.all })
    case 'seed': {
      const count = values.count === undefined ? 10_000 : Number(values.count)
      if (!(Number.isInteger(count) && count >= 1 && count <= 10_000_000)) {
        throw new UsageError(
          `--count=${JSON.stringify(values.count)} is invalid: expected an integer from 1 to 10000000`,
        )
      }
      return seed(config, { count })
    }
    default:
      throw new UsageError(`unknown command: ${command}`)
  }
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
