import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import pino, { type DestinationStream, type Logger, type StreamEntry } from 'pino'
import type PinoPretty from 'pino-pretty'
import { createStream } from 'rotating-file-stream'
import type { Config } from '../../config/index.ts'
import { currentContext } from '../../shared/request-context.ts'
import { BatchedFileStream } from './batched-file-stream.ts'

const require = createRequire(import.meta.url)

/** The kinds of log a service writes; each can go to its own rotated file. */
export type LogType = 'system' | 'access' | 'business'

export interface Loggers {
  system: Logger
  access: Logger
  business: Logger
  /** Flushes buffered lines and closes files. */
  close(): Promise<void>
}

/**
 * Paths whose values never reach a log: credentials in headers, passwords and tokens in bodies
 * or objects logged by hand.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'password',
  'token',
  'access_token',
  'refresh_token',
  'secret',
  '*.password',
  '*.password_hash',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.secret',
]

type LogSettings = Pick<
  Config,
  | 'APP_NAME'
  | 'APP_ENV'
  | 'LOG_LEVEL'
  | 'LOG_FORMAT'
  | 'LOG_DIR'
  | 'LOG_ROTATE'
  | 'LOG_RETENTION_FILES'
> &
  Partial<Pick<Config, 'CLUSTER_WORKER_SLOT'>>

/**
 * Creates the system, access and business loggers. Console output is readable in local and JSON
 * lines with UTC timestamps elsewhere; with LOG_DIR set each type also goes to its own file,
 * rotated by size or time, gzip-compressed and pruned to LOG_RETENTION_FILES.
 */
export function createLoggers(
  config: LogSettings,
  console: DestinationStream = defaultConsole(config),
): Loggers {
  const files: BatchedFileStream[] = []
  if (config.LOG_DIR) mkdirSync(config.LOG_DIR, { recursive: true })

  const make = (type: LogType): Logger => {
    const streams: StreamEntry[] = [{ stream: console, level: 'trace' }]
    if (config.LOG_DIR) {
      // Lines reach the file in batches, not one write each (see BatchedFileStream).
      const file = new BatchedFileStream(openRotatingFile(config, type))
      files.push(file)
      streams.push({ stream: file, level: 'trace' })
    }
    return pino(
      {
        level: config.LOG_LEVEL,
        // pid tells the processes of `serve --workers N` apart in one log stream.
        base: { app: config.APP_NAME, logger: type, pid: process.pid },
        timestamp: isoTimeOfThisMillisecond,
        // The access loggers write fixed fields only (http/access-log.ts, the gRPC call log: no
        // headers, no bodies), so this one skips redaction: with wildcard paths pino runs the
        // redactor on every top-level field of every line, a tenth of a /health request's CPU.
        ...(type === 'access' ? {} : { redact: { paths: REDACT_PATHS, censor: '[redacted]' } }),
        // The request id comes from the request context, so lines logged by services, queries
        // and jobs carry it too without a logger being passed down by hand.
        // Trace and span ids come the same way, so a log search by trace id finds every line.
        mixin: () => {
          const context = currentContext()
          if (!context) return {}
          const trace = context.trace
          return trace
            ? { req_id: context.requestId, trace_id: trace.traceId, span_id: trace.spanId }
            : { req_id: context.requestId }
        },
      },
      streams.length === 1 ? console : pino.multistream(streams),
    )
  }

  const loggers = { system: make('system'), access: make('access'), business: make('business') }
  return {
    ...loggers,
    async close() {
      for (const logger of Object.values(loggers)) logger.flush()
      if ('flushSync' in console && typeof console.flushSync === 'function') {
        try {
          console.flushSync()
        } catch {
          // sonic-boom throws when nothing is open yet; nothing to flush then.
        }
      }
      await Promise.all(files.map((file) => new Promise<void>((resolve) => file.end(resolve))))
    },
  }
}

/**
 * pino's `isoTime`, formatting the date once per millisecond rather than once per line: under
 * load dozens of access lines share a millisecond, and toISOString was 2% of a /health request.
 */
let lastMs = 0
let lastTime = ''
function isoTimeOfThisMillisecond(): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastTime = `,"time":"${new Date(now).toISOString()}"`
  }
  return lastTime
}

function defaultConsole(config: LogSettings): DestinationStream {
  const format = config.LOG_FORMAT ?? (config.APP_ENV === 'local' ? 'pretty' : 'json')
  if (format === 'pretty') {
    // Required here: production logs JSON and never loads the pretty printer (start-up, memory).
    const pretty = require('pino-pretty') as typeof PinoPretty
    return pretty({
      translateTime: 'UTC:yyyy-mm-dd HH:MM:ss.l',
      ignore: 'pid,hostname,app',
      sync: true,
    })
  }
  // Gathered like the files' lines: sonic-boom measures the byte length of all the text it holds
  // on every write (Buffer.byteLength of up to 16 KiB per line), which made writing an access
  // line cost more than building it. Given 64 KiB at a time, it measures once per chunk.
  return new BatchedFileStream(pino.destination({ dest: 1, sync: false }))
}

function openRotatingFile(config: LogSettings, type: LogType) {
  const rotate = config.LOG_ROTATE
  const bySize = rotate.endsWith('M') || rotate.endsWith('G')
  // Each worker of `serve --workers N` rotates files of its own: two processes rotating one file
  // would lose lines.
  const worker = config.CLUSTER_WORKER_SLOT === undefined ? '' : `-w${config.CLUSTER_WORKER_SLOT}`
  return createStream(`${config.APP_NAME}-${type}${worker}.log`, {
    path: config.LOG_DIR,
    ...(bySize ? { size: rotate } : { interval: rotate }),
    compress: 'gzip',
    maxFiles: config.LOG_RETENTION_FILES,
  })
}
