import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { GENERATED_EPOCH_MS, generateInput, isBadLine } from './generate.ts'
import type { PipelineSummary } from './run-pipeline.ts'
import { readPart } from './test-support.ts'

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url))
const RECORDS = 1_000_000
const BAD_EVERY = 997

test('1,000,000 records with bad lines: every good one out exactly once, peak RSS < 200 MB', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'servekit-pipeline-1m-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const input = join(dir, 'in')
  const output = join(dir, 'out')
  const generated = await generateInput({
    dir: input,
    files: 4,
    records: RECORDS,
    badEvery: BAD_EVERY,
  })

  // A process of its own, so its peak RSS is the pipeline's alone.
  const child = spawn(
    process.execPath,
    [
      CLI,
      '--input',
      input,
      '--output',
      output,
      '--batch-size',
      '100000',
      '--progress',
      'lines',
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const [code] = await once(child, 'exit')
  assert.equal(code, 0, stderr)
  const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as PipelineSummary
  t.diagnostic(
    `pipeline: ${summary.good + summary.bad} records in ${summary.seconds} s, ` +
      `${summary.recordsPerSecond} records/s, peak RSS ${summary.peakRssMb} MB`,
  )

  assert.equal(summary.bad, generated.bad)
  assert.equal(summary.good, generated.good)
  assert.equal(summary.batches, Math.ceil(generated.good / 100_000))
  assert.match(stdout, /pipeline: done: 4 files, [\d,]+ good, [\d,]+ bad, 10 batches/)
  assert.ok(summary.peakRssMb < 200, `peak RSS ${summary.peakRssMb} MB`)

  // Record i carries timestamp EPOCH + i s: each good index must come out exactly once.
  const seen = new Uint8Array(RECORDS)
  let count = 0
  let userIdSum = 0
  for (const part of summary.outputs) {
    await readPart(part, (event) => {
      const index = (Date.parse(event.timestamp) - GENERATED_EPOCH_MS) / 1000
      assert.ok(Number.isInteger(index) && index >= 0 && index < RECORDS, event.timestamp)
      assert.equal(isBadLine(index, BAD_EVERY), false, `bad record ${index} came out`)
      assert.equal(seen[index], 0, `record ${index} came out twice`)
      seen[index] = 1
      count++
      userIdSum += Number(event.user_id)
    })
  }
  assert.equal(count, generated.good)
  assert.equal(userIdSum, generated.userIdSum, 'checksum of the user ids')
})
