/**
 * Runs the fault and attack suite (test/faults/*.fault.ts) one file at a time, then writes its
 * report (test/faults/results/latest.{json,md}) and the README's reliability table from the
 * figures each test recorded. With file arguments it runs only those and writes no report.
 *
 *   node scripts/test-faults.ts                         # the whole suite, and the report
 *   node scripts/test-faults.ts test/faults/x.fault.ts  # one file
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CATALOGUE, FIGURES_FILE, type Figure } from '../test/faults/figures.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const files = process.argv.slice(2)
const isWholeSuite = files.length === 0

rmSync(FIGURES_FILE, { force: true })
const startedMs = Date.now()
// One file at a time: each suite loads the 2-core machine on purpose and measures timings.
const run = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', ...(isWholeSuite ? ['test/faults/**/*.fault.ts'] : files)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, FAULTS_FIGURES: FIGURES_FILE } },
)
const minutes = (Date.now() - startedMs) / 60_000

if (isWholeSuite) writeReport(readFigures(), minutes)
process.exit(run.status ?? 1)

function readFigures(): Figure[] {
  if (!existsSync(FIGURES_FILE)) return []
  return readFileSync(FIGURES_FILE, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Figure)
}

function writeReport(figures: Figure[], minutes: number): void {
  const date = new Date().toISOString().slice(0, 10)
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')
  const lines = [
    `Fault suite, ${date}: ${figures.filter((f) => f.ok).length} of ${figures.length} figures met, in ${minutes.toFixed(1)} min (\`npm run test:faults\`).`,
    '',
    '| # | test | measured | pass figure | |',
    '|---:|---|---|---|---|',
  ]
  for (const [key, title] of Object.entries(CATALOGUE)) {
    const item = Number(key)
    const own = figures.filter((figure) => figure.item === item)
    if (own.length === 0) lines.push(`| ${item} | ${cell(title)} | not measured | | ✗ |`)
    for (const figure of own)
      lines.push(
        `| ${item} | ${cell(figure.name)} | ${cell(figure.measured)} | ${cell(figure.pass)} | ${figure.ok ? '✓' : '✗'} |`,
      )
  }
  const table = lines.join('\n')
  const results = fileURLToPath(new URL('../test/faults/results/', import.meta.url))
  mkdirSync(results, { recursive: true })
  writeFileSync(`${results}latest.json`, `${JSON.stringify({ date, minutes, figures }, null, 2)}\n`)
  writeFileSync(`${results}latest.md`, `# Fault suite report\n\n${table}\n`)

  const readmePath = `${root}README.md`
  const readme = readFileSync(readmePath, 'utf8')
  const begin = '<!-- faults:begin -->'
  const end = '<!-- faults:end -->'
  const from = readme.indexOf(begin)
  const to = readme.indexOf(end)
  if (from !== -1 && to > from)
    writeFileSync(
      readmePath,
      `${readme.slice(0, from + begin.length)}\n${table}\n${readme.slice(to)}`,
    )
  // Lay the tables out as the linter wants them, so the written files can be committed as they are.
  spawnSync(
    `${root}node_modules/.bin/biome`,
    ['format', '--write', readmePath, `${results}latest.md`, `${results}latest.json`],
    { cwd: root, stdio: 'ignore' },
  )
}
