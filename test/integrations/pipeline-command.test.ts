import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { generateInput } from '../../src/pipeline/generate.ts'
import type { OutputEvent } from '../../src/pipeline/pipeline-record.ts'
import { readPart } from '../../src/pipeline/test-support.ts'
import { scratchDir } from '../helpers/app.ts'
import { runCli, stopOnExit } from '../helpers/process.ts'

function folders() {
  const dir = scratchDir()
  return { input: join(dir, 'in'), output: join(dir, 'out') }
}

async function pipelineRun(args: string[]) {
  const running = runCli(['pipeline', ...args], {})
  const code = await running.exited
  return { code, output: running.output() }
}

test('`node src/main.ts pipeline` turns a small input into gzip parts holding every good record once', async () => {
  const { input, output } = folders()
  const generated = await generateInput({ dir: input, files: 3, records: 5000, badEvery: 250 })
  const { code, output: text } = await pipelineRun([
    '--input',
    input,
    '--output',
    output,
    '--batch-size',
    '1000',
  ])
  assert.equal(code, 0, text)
  assert.match(text, /pipeline: done: 3 files, 4,980 good, 20 bad, 5 batches/)
  assert.match(text, /pipeline: bad lines: /)
  assert.equal(generated.good, 4980)

  const parts = readdirSync(output).sort()
  assert.deepEqual(
    parts,
    [1, 2, 3, 4, 5].map((n) => `part-0000${n}.jsonl.gz`),
  )
  const timestamps = new Set<string>()
  let userIdSum = 0
  for (const part of parts) {
    await readPart(join(output, part), (event: OutputEvent) => {
      assert.deepEqual(Object.keys(event).sort(), ['action', 'device_type', 'timestamp', 'user_id'])
      timestamps.add(event.timestamp)
      userIdSum += Number(event.user_id)
    })
  }
  assert.equal(timestamps.size, generated.good, 'each good record exactly once')
  assert.equal(userIdSum, generated.userIdSum)
})

test('bad usage and a bad input folder exit 2; parts of an earlier run need --overwrite', async () => {
  const { input, output } = folders()
  await generateInput({ dir: input, files: 1, records: 100 })

  const noOutput = await pipelineRun(['--input', input])
  assert.equal(noOutput.code, 2)
  assert.match(noOutput.output, /pipeline needs --input <dir> and --output <dir>/)
  assert.equal(
    (await pipelineRun(['--input', input, '--output', output, '--batch-size', '0'])).code,
    2,
  )
  assert.equal(
    (await pipelineRun(['--input', input, '--output', output, '--progress', 'loud'])).code,
    2,
  )

  const missing = await pipelineRun(['--input', join(input, 'nope'), '--output', output])
  assert.equal(missing.code, 2)
  assert.match(missing.output, /cannot read input folder/)

  assert.equal(
    (await pipelineRun(['--input', input, '--output', output, '--progress', 'none'])).code,
    0,
  )
  const again = await pipelineRun(['--input', input, '--output', output])
  assert.equal(again.code, 2)
  assert.match(again.output, /already holds 1 part files/)
  const overwritten = await pipelineRun(['--input', input, '--output', output, '--overwrite'])
  assert.equal(overwritten.code, 0, overwritten.output)
})

test('a file that cannot be read to the end is reported and the run exits 1', async () => {
  const { input, output } = folders()
  const generated = await generateInput({ dir: input, files: 2, records: 2000, gzipLevel: 1 })
  const [first] = generated.files
  assert.ok(first)
  const bytes = readFileSync(first)
  writeFileSync(first, bytes.subarray(0, Math.floor(bytes.length / 2)))
  const run = await pipelineRun(['--input', input, '--output', output, '--progress', 'none'])
  assert.equal(run.code, 1, run.output)
  assert.match(run.output, /could not finish input-00001\.json\.gz/)
})

test('SIGINT stops a run: exit 130, finished parts kept, no half-written part left', async (t) => {
  const { input, output } = folders()
  await generateInput({ dir: input, files: 2, records: 400_000, gzipLevel: 1 })
  const running = runCli(
    [
      'pipeline',
      '--input',
      input,
      '--output',
      output,
      '--batch-size',
      '20000',
      '--progress',
      'lines',
    ],
    {},
  )
  t.after(stopOnExit(running))
  // Wait until the command has started (its first line), then interrupt it mid-run.
  for (let wait = 0; !running.output().includes('pipeline: ') && wait < 200; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  running.child.kill('SIGINT')
  const code = await running.exited
  const text = running.output()
  assert.equal(code, 130, text)
  assert.match(text, /interrupted; the finished parts are kept/)
  const left = readdirSync(output)
  assert.equal(left.filter((name) => name.endsWith('.tmp')).length, 0)
  assert.ok(left.length < 20, `the run stopped early: ${left.length} parts`)
})
