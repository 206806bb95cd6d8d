// Writes .env.example from the config schema: every key, its default and its one-line meaning.
// Run with `npx node scripts/write-env-example.ts` after changing src/config/config-schema.ts.
import { writeFileSync } from 'node:fs'
import { ConfigSchema } from '../src/config/index.ts'

const lines = [
  '# servekit settings. Copy to .env and adjust; the process environment wins over this file,',
  '# and configs/.env.<APP_ENV> wins over .env. Every key is optional; the defaults run embedded.',
  '',
]
for (const [key, schema] of Object.entries(ConfigSchema.properties) as Array<
  [string, { description?: string; default?: unknown }]
>) {
  lines.push(`# ${schema.description}`, `${key}=${schema.default ?? ''}`)
}
writeFileSync(new URL('../.env.example', import.meta.url), `${lines.join('\n')}\n`)
