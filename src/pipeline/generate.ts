import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { createGzip } from 'node:zlib'

/**
 * Makes pipeline input: gzip JSON-lines files of app events with extra fields the pipeline
 * drops, and (with badEvery) broken lines of every kind it must count. Deterministic for a seed.
 * Record i has timestamp GENERATED_EPOCH_MS + i seconds, so a test can tell records apart.
 */

export const GENERATED_EPOCH_MS = Date.UTC(2026, 0, 1)

export interface GenerateOptions {
  dir: string
  files: number
  /** Lines in all, bad ones included. */
  records: number
  /** Every badEvery-th line is broken (0: none). */
  badEvery?: number
  seed?: number
  /** gzip level of the files; default 1 (fast). */
  gzipLevel?: number
}

export interface GeneratedInput {
  files: string[]
  good: number
  bad: number
  /** Sum of the numeric user_id of the good records: a checksum of the ids. */
  userIdSum: number
}

const ACTIONS = ['view', 'click', 'add_to_cart', 'purchase', 'search', 'login', 'logout', 'share']
const DEVICES = ['mobile', 'desktop', 'tablet', 'tv', 'watch']
const OSES = ['ios', 'android', 'windows', 'macos', 'linux']
const BAD_KINDS = 7

/** True when line `index` is one of the broken ones. */
export function isBadLine(index: number, badEvery: number): boolean {
  return badEvery > 0 && index % badEvery === badEvery - 1
}

/** Writes the files (input-00001.json.gz, ...) and says what is in them. */
export async function generateInput(options: GenerateOptions): Promise<GeneratedInput> {
  const badEvery = options.badEvery ?? 0
  await mkdir(options.dir, { recursive: true })
  const random = mulberry32(options.seed ?? 1)
  const perFile = Math.ceil(options.records / options.files)
  const result: GeneratedInput = { files: [], good: 0, bad: 0, userIdSum: 0 }

  for (let file = 0; file < options.files; file++) {
    const first = file * perFile
    const last = Math.min(options.records, first + perFile)
    const path = join(options.dir, `input-${String(file + 1).padStart(5, '0')}.json.gz`)
    result.files.push(path)
    const lines = function* () {
      let text = ''
      for (let index = first; index < last; index++) {
        if (isBadLine(index, badEvery)) {
          text += `${badLine(index, Math.floor(index / badEvery) % BAD_KINDS)}\n`
          result.bad++
        } else {
          const userId = 1_000_000 + Math.floor(random() * 50_000)
          text += `${JSON.stringify(event(index, userId, random))}\n`
          result.good++
          result.userIdSum += userId
        }
        if (text.length >= 64 * 1024) {
          yield text
          text = ''
        }
      }
      if (text !== '') yield text
    }
    await pipeline(
      Readable.from(lines()),
      createGzip({ level: options.gzipLevel ?? 1 }),
      createWriteStream(path),
    )
  }
  return result
}

function event(index: number, userId: number, random: () => number) {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T
  return {
    event_id: `evt-${index}`,
    user_id: String(userId),
    action: pick(ACTIONS),
    timestamp: new Date(GENERATED_EPOCH_MS + index * 1000).toISOString(),
    device: {
      type: pick(DEVICES),
      os: pick(OSES),
      app_version: `3.${Math.floor(random() * 20)}.${Math.floor(random() * 10)}`,
    },
    session_id: Math.floor(random() * 2 ** 48).toString(16),
    ip: `10.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`,
    properties: {
      page: `/items/${Math.floor(random() * 10_000)}`,
      duration_ms: Math.floor(random() * 60_000),
    },
  }
}

function badLine(index: number, kind: number): string {
  const timestamp = new Date(GENERATED_EPOCH_MS + index * 1000).toISOString()
  switch (kind) {
    case 0:
      return `{"user_id":"1","action":"view","timestamp":"${timestamp}","device":{"ty`
    case 1:
      return JSON.stringify({ action: 'view', timestamp, device: { type: 'mobile' } })
    case 2:
      return JSON.stringify({ user_id: '7', action: 'view', timestamp })
    case 3:
      return JSON.stringify({ user_id: '7', action: 'view', timestamp, device: { os: 'ios' } })
    case 4:
      return JSON.stringify({ user_id: '7', action: 42, timestamp, device: { type: 'tv' } })
    case 5:
      return JSON.stringify({
        user_id: '7',
        action: 'view',
        timestamp: 'yesterday',
        device: { type: 'tv' },
      })
    default:
      return '[1,2,3]'
  }
}

/** A small, fast, seedable PRNG (public domain), so generated data is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      files: { type: 'string', default: '4' },
      records: { type: 'string', default: '1000000' },
      'bad-every': { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
    },
  })
  if (!values.dir) {
    process.stderr.write(
      'usage: node src/pipeline/generate.ts --dir DIR [--files 4] [--records 1000000] [--bad-every 1000] [--seed 1]\n',
    )
    process.exitCode = 2
  } else {
    const generated = await generateInput({
      dir: values.dir,
      files: Number(values.files),
      records: Number(values.records),
      badEvery: Number(values['bad-every']),
      seed: Number(values.seed),
    })
    process.stdout.write(`${JSON.stringify({ ...generated, files: generated.files.length })}\n`)
  }
}
