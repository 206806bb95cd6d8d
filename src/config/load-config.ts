import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import type { TSchema } from 'typebox'
import Value from 'typebox/value'
import { type Config, ConfigSchema, EXAMPLE_JWT_SECRET } from './config-schema.ts'

/** A setting that cannot be used; the message is one line, fit for a terminal. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

export interface LoadConfigOptions {
  /** Folder holding `.env` and `configs/`; defaults to the working directory. */
  cwd?: string
  /** Read `.env` and `configs/.env.<APP_ENV>`; tests turn this off. */
  readFiles?: boolean
}

/**
 * Builds the frozen Config. Precedence: the process environment, then `configs/.env.<APP_ENV>`,
 * then `.env`, then the schema's defaults.
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): Readonly<Config> {
  const cwd = options.cwd ?? process.cwd()
  const readFiles = options.readFiles ?? true
  const dotEnv = readFiles ? readEnvFile(resolve(cwd, '.env')) : {}
  const appEnv = env.APP_ENV ?? dotEnv.APP_ENV ?? 'local'
  const envFile =
    readFiles && /^[a-z]+$/.test(appEnv) ? readEnvFile(resolve(cwd, `configs/.env.${appEnv}`)) : {}

  const raw: Record<string, string> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key] ?? envFile[key] ?? dotEnv[key]
    if (value !== undefined && value !== '') raw[key] = value
  }

  const config = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, { ...raw })) as Record<
    string,
    unknown
  >
  for (const key of Object.keys(ConfigSchema.properties)) {
    const schema = (ConfigSchema.properties as Record<string, TSchema>)[key] as TSchema
    if (
      !Value.Check(schema, config[key]) &&
      !(config[key] === undefined && !(key in raw) && isOptional(schema))
    ) {
      const shown = (schema as { secret?: boolean }).secret
        ? '(value hidden)'
        : JSON.stringify(raw[key] ?? '')
      throw new ConfigError(`${key}=${shown} is invalid: expected ${describeExpected(schema)}`)
    }
  }
  const checked = config as Config
  if (
    checked.APP_ENV === 'prod' &&
    (raw.JWT_SECRET === undefined || checked.JWT_SECRET === EXAMPLE_JWT_SECRET)
  ) {
    throw new ConfigError(
      'JWT_SECRET must be set to a secret of your own in prod: expected a random string of at least 32 characters',
    )
  }
  // Browsers refuse `Access-Control-Allow-Origin: *` with credentials; reflecting every origin
  // instead would hand any website the user's session, so the combination is refused outright.
  if (checked.CORS_ALLOW_CREDENTIALS && checked.CORS_ORIGINS === '*') {
    throw new ConfigError(
      'CORS_ORIGINS="*" is invalid with CORS_ALLOW_CREDENTIALS=true: expected the exact origins allowed to send credentials',
    )
  }
  if ((checked.TLS_CERT_FILE === undefined) !== (checked.TLS_KEY_FILE === undefined)) {
    throw new ConfigError(
      `${checked.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} is missing: expected TLS_CERT_FILE and TLS_KEY_FILE together`,
    )
  }
  return Object.freeze(checked)
}

function readEnvFile(path: string): Env {
  try {
    return parseEnv(readFileSync(path, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError(`cannot read ${path}: ${(error as Error).message}`)
  }
}

function isOptional(schema: TSchema): boolean {
  return (schema as { '~optional'?: boolean })['~optional'] === true
}

/** Turns a schema into the words a person needs: "an integer from 0 to 65535". */
function describeExpected(schema: TSchema): string {
  const s = schema as Record<string, unknown>
  if (typeof s.expected === 'string') return s.expected
  if (Array.isArray(s.anyOf))
    return `one of ${s.anyOf.map((option: { const?: unknown }) => option.const).join(', ')}`
  if (s.type === 'integer') return `an integer from ${s.minimum} to ${s.maximum}`
  if (s.type === 'boolean') return 'true or false'
  if (s.type === 'string' && typeof s.pattern === 'string') return `a string matching ${s.pattern}`
  return 'a non-empty string'
}
