import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { AppError } from '../shared/errors.ts'
import { generateInput } from './generate.ts'
import type { OutputEvent } from './pipeline-record.ts'
import { runPipeline } from './run-pipeline.ts'
import { readPart } from './test-support.ts'

function scratch(t: TestContext): { input: string; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'servekit-pipeline-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { input: join(dir, 'in'), output: join(dir, 'out') }
}

function recorder(isTTY: boolean) {
  const writes: string[] = []
  return { isTTY, writes, write: (text: string) => writes.push(text), text: () => writes.join('') }
}

async function readAll(dir: string): Promise<Map<string, OutputEvent[]>> {
  const parts = new Map<string, OutputEvent[]>()
  for (const name of readdirSync(dir).sort()) {
    const events: OutputEvent[] = []
    await readPart(join(dir, name), (event) => events.push(event))
    parts.set(name, events)
  }
  return parts
}

test('good records land in parts of batchSize; bad lines are counted by reason', async (t) => {
  const { input, output } = scratch(t)
  const generated = await generateInput({ dir: input, files: 3, records: 2500, badEvery: 100 })
  writeFileSync(join(input, 'notes.txt'), 'not an input file')
  const out = recorder(false)
  const summary = await runPipeline({ input, output, batchSize: 1000, progressOutput: out })

  assert.equal(generated.good, 2475)
  assert.deepEqual(
    { files: summary.files, good: summary.good, bad: summary.bad, batches: summary.batches },
    { files: 3, good: 2475, bad: 25, batches: 3 },
  )
  assert.equal(
    Object.values(summary.badByReason).reduce((a, b) => a + b, 0),
    25,
  )
  assert.equal(summary.badByReason['invalid JSON'], 4)
  assert.deepEqual(summary.badSamples[0], {
    file: 'input-00001.json.gz',
    line: 100,
    reason: 'invalid JSON',
  })
  assert.deepEqual(summary.failedFiles, [])

  const parts = await readAll(output)
  assert.deepEqual(
    [...parts.keys()],
    ['part-00001.jsonl.gz', 'part-00002.jsonl.gz', 'part-00003.jsonl.gz'],
  )
  assert.deepEqual(
    [...parts.values()].map((events) => events.length),
    [1000, 1000, 475],
  )
  const first = parts.get('part-00001.jsonl.gz')?.[0]
  assert.deepEqual(Object.keys(first ?? {}), ['user_id', 'action', 'timestamp', 'device_type'])
  assert.equal(first?.timestamp, '2026-01-01T00:00:00.000Z')
  const userIdSum = [...parts.values()]
    .flat()
    .reduce((sum, event) => sum + Number(event.user_id), 0)
  assert.equal(userIdSum, generated.userIdSum)

  assert.match(out.text(), /^pipeline: 100\.0% {2}file 3\/3 {2}2,500 records \(25 bad\)/m)
  assert.match(out.text(), /pipeline: done: 3 files, 2,475 good, 25 bad, 3 batches in/)
  assert.match(out.text(), /input-00001\.json\.gz:100: invalid JSON/)
  assert.doesNotMatch(out.text(), /\r/)
})

test('on a terminal, progress is a bar redrawn in place', async (t) => {
  const { input, output } = scratch(t)
  await generateInput({ dir: input, files: 1, records: 100 })
  const out = recorder(true)
  await runPipeline({ input, output, progressOutput: out })
  assert.match(out.text(), /\r\[#{24}\] 100\.0%.*ETA 0s/)
  assert.ok(
    out.text().includes('\u001b[K\npipeline: done'),
    'the bar ends its line before the summary',
  )
})

test('plain progress lines come every interval with rate and ETA', async (t) => {
  const { input, output } = scratch(t)
  await generateInput({ dir: input, files: 2, records: 200_000 })
  const out = recorder(false)
  await runPipeline({ input, output, progressOutput: out, progressIntervalMs: 20 })
  const lines = out.writes.filter((line) => line.startsWith('pipeline: ') && line.includes('rec/s'))
  assert.ok(lines.length >= 3, `${lines.length} progress lines`)
  assert.match(
    lines[0] ?? '',
    /^pipeline: +\d+\.\d% {2}file \d\/2 {2}[\d,]+ records \(0 bad\) {2}[\d,]+ rec\/s {2}ETA \S+\n$/,
  )
})

test('a truncated gzip file is reported; its lines before the cut and the other files count', async (t) => {
  const { input, output } = scratch(t)
  const generated = await generateInput({ dir: input, files: 2, records: 2000 })
  const whole = readFileSync(join(input, 'input-00002.json.gz'))
  writeFileSync(join(input, 'input-00002.json.gz'), whole.subarray(0, Math.floor(whole.length / 2)))
  writeFileSync(join(input, 'input-00003.jsonl.gz'), gzipSync('{"broken"\n\n  \n'))
  const summary = await runPipeline({ input, output, progress: 'none' })
  assert.equal(summary.files, 3)
  assert.equal(summary.bad, 1, 'only the broken line; blank lines are no records')
  assert.ok(summary.good > 1000 && summary.good < generated.good, `${summary.good} good`)
  assert.equal(summary.failedFiles.length, 1)
  assert.equal(summary.failedFiles[0]?.file, 'input-00002.json.gz')
  assert.match(summary.failedFiles[0]?.error ?? '', /unexpected end of file/)
  let written = 0
  for (const events of (await readAll(output)).values()) written += events.length
  assert.equal(written, summary.good)
})

test('bad options, a missing input and a used output folder are refused', async (t) => {
  const { input, output } = scratch(t)
  const refuses = (options: Parameters<typeof runPipeline>[0], code: string) =>
    assert.rejects(runPipeline({ progress: 'none', ...options }), (error: unknown) => {
      assert.ok(error instanceof AppError)
      assert.equal(error.code, code)
      return true
    })
  await refuses({ input, output }, 'PIPELINE_INPUT_NOT_FOUND')
  await generateInput({ dir: input, files: 1, records: 10 })
  await refuses({ input, output, batchSize: 0 }, 'PIPELINE_INVALID_OPTION')
  await runPipeline({ input, output, progress: 'none' })
  await refuses({ input, output }, 'PIPELINE_OUTPUT_NOT_EMPTY')
  const again = await runPipeline({ input, output, progress: 'none', overwrite: true })
  assert.equal(again.good, 10)
  assert.deepEqual(readdirSync(output), ['part-00001.jsonl.gz'])
})

test('an abort stops the run, keeps finished parts and leaves no unfinished one', async (t) => {
  const { input, output } = scratch(t)
  await generateInput({ dir: input, files: 2, records: 300_000 })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 150)
  await assert.rejects(
    runPipeline({ input, output, batchSize: 10_000, progress: 'none', signal: controller.signal }),
    { name: 'AbortError' },
  )
  const names = readdirSync(output)
  assert.ok(
    names.every((name) => /^part-\d{5}\.jsonl\.gz$/.test(name)),
    names.join(' '),
  )
  for (const events of (await readAll(output)).values()) assert.equal(events.length, 10_000)
})
