import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { type TestContext, test } from 'node:test'
import { createHttpClient } from './http-client.ts'
import { HttpClientError } from './http-client-error.ts'
import { sendJson, startUpstream } from './test-upstream.ts'

const MiB = 1024 * 1024
const FIFTY_MIB = 50 * MiB
/**
 * V8 frees socket read buffers lazily (a GC is due after about 64 MiB of new external memory),
 * so RSS grows by tens of MiB for any large transfer. Constant memory shows as growth that does
 * not follow the size: a 256 MiB transfer must stay well under half its size.
 */
const LARGE = 256 * MiB
const MAX_GROWTH_MIB = 100
const CHUNK = Buffer.alloc(64 * 1024, 'servekit ')

function client(t: TestContext) {
  const http = createHttpClient({
    timeoutMs: 5000,
    retries: 2,
    connections: 2,
    keepAliveTimeoutMs: 5000,
    retryBaseDelayMs: 1,
  })
  t.after(() => http.close())
  return http
}

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'servekit-http-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Writes `total` bytes of one reused chunk, waiting for drain: the server holds no copy. */
async function streamBytes(response: ServerResponse, total: number): Promise<void> {
  let sent = 0
  while (sent < total && !response.destroyed) {
    const piece = total - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, total - sent)
    sent += piece.length
    if (!response.write(piece)) await once(response, 'drain')
  }
  response.end()
}

/** The largest RSS seen while `work` runs, minus the RSS before it, in MiB. */
async function rssGrowthMiB(work: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage.rss()
  let peak = before
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 5)
  try {
    await work()
  } finally {
    clearInterval(sampler)
  }
  peak = Math.max(peak, process.memoryUsage.rss())
  return (peak - before) / MiB
}

test('a 50 MiB download streams to a file at bounded memory, named by its headers', async (t) => {
  const upstream = await startUpstream(t, async (_request, response) => {
    response.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-length': FIFTY_MIB,
      'content-disposition': `attachment; filename="export.csv"; filename*=UTF-8''%C3%A9t%C3%A9.csv`,
    })
    await streamBytes(response, FIFTY_MIB)
  })
  const http = client(t)
  const target = join(scratch(t), 'out.bin')
  let info: Awaited<ReturnType<typeof http.downloadTo>> | undefined
  const growthMiB = await rssGrowthMiB(async () => {
    info = await http.downloadTo(`${upstream.url}/files/export`, target)
  })
  t.diagnostic(`RSS growth during the 50 MiB download: ${growthMiB.toFixed(1)} MiB`)
  assert.deepEqual(info, { filename: 'été.csv', mimeType: 'text/csv', size: FIFTY_MIB })
  assert.equal(statSync(target).size, FIFTY_MIB)
  assert.ok(growthMiB < MAX_GROWTH_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB`)
})

test('memory stays flat however large the download: 256 MiB into a Writable', async (t) => {
  const upstream = await startUpstream(t, async (_request, response) => {
    response.writeHead(200, { 'content-length': LARGE })
    await streamBytes(response, LARGE)
  })
  const http = client(t)
  let written = 0
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, done) {
      written += chunk.length
      // A slow consumer: backpressure must hold the rest upstream, not in our memory.
      if (written % (16 * MiB) < chunk.length) setTimeout(done, 5)
      else done()
    },
  })
  const growthMiB = await rssGrowthMiB(() => http.downloadTo(`${upstream.url}/big`, sink))
  t.diagnostic(`RSS growth during the 256 MiB download: ${growthMiB.toFixed(1)} MiB`)
  assert.equal(written, LARGE)
  assert.ok(growthMiB < MAX_GROWTH_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB for 256 MiB`)
})

test('a 256 MiB upload streams from a Readable at bounded memory', async (t) => {
  let received = 0
  const upstream = await startUpstream(t, async (request, response) => {
    for await (const chunk of request) received += (chunk as Buffer).length
    sendJson(response, 201, { received, type: request.headers['content-type'] })
  })
  const http = client(t)
  const source = Readable.from(
    (function* () {
      for (let sent = 0; sent < LARGE; sent += CHUNK.length) yield CHUNK
    })(),
  )
  let result: Awaited<ReturnType<typeof http.upload>> | undefined
  const growthMiB = await rssGrowthMiB(async () => {
    result = await http.upload(`${upstream.url}/files`, source, {
      method: 'POST',
      contentType: 'text/plain',
    })
  })
  t.diagnostic(`RSS growth during the 256 MiB upload: ${growthMiB.toFixed(1)} MiB`)
  assert.equal(result?.status, 201)
  assert.deepEqual(result?.data, { received: LARGE, type: 'text/plain' })
  assert.equal(upstream.hits, 1)
  assert.ok(growthMiB < MAX_GROWTH_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB for 256 MiB`)
})

test('download() returns filename, bytes and MIME type; the URL names it when headers do not', async (t) => {
  const upstream = await startUpstream(t, (request, response) => {
    if (request.url === '/named') {
      response.writeHead(200, {
        'content-type': 'Application/PDF',
        'content-disposition': 'attachment; filename="report.pdf"',
      })
      response.end('%PDF-1.7')
      return
    }
    response.writeHead(200).end(Buffer.from([1, 2, 3]))
  })
  const http = client(t)
  const named = await http.download(`${upstream.url}/named`)
  assert.equal(named.filename, 'report.pdf')
  assert.equal(named.mimeType, 'application/pdf')
  assert.equal(named.bytes.toString(), '%PDF-1.7')
  assert.equal(named.size, 8)

  const plain = await http.download(`${upstream.url}/files/data%20set.bin`)
  assert.deepEqual(
    { filename: plain.filename, mimeType: plain.mimeType, bytes: [...plain.bytes] },
    { filename: 'data set.bin', mimeType: 'application/octet-stream', bytes: [1, 2, 3] },
  )
  await assert.rejects(http.download(`${upstream.url}/named`, { maxBytes: 4 }), {
    kind: 'too_large',
  })
})

test('a download answered 404 throws an http error and writes no file', async (t) => {
  const upstream = await startUpstream(t, (_request, response) =>
    sendJson(response, 404, { detail: 'Not Found' }),
  )
  const http = client(t)
  const target = join(scratch(t), 'missing.bin')
  await assert.rejects(http.downloadTo(`${upstream.url}/nope`, target), (error: unknown) => {
    assert.ok(error instanceof HttpClientError)
    assert.equal(error.kind, 'http')
    assert.equal(error.status, 404)
    return true
  })
  assert.equal(existsSync(target), false)
})

test('a download cut off midway throws and removes the partial file; it is not retried', async (t) => {
  const upstream = await startUpstream(t, (_request, response) => {
    response.writeHead(200, { 'content-length': 10 * MiB })
    response.write(CHUNK, () => response.destroy())
  })
  const http = client(t)
  const target = join(scratch(t), 'partial.bin')
  await assert.rejects(http.downloadTo(`${upstream.url}/cut`, target), { kind: 'network' })
  assert.equal(existsSync(target), false)
  assert.equal(upstream.hits, 1)

  let written = 0
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.length
      done()
    },
  })
  await assert.rejects(http.downloadTo(`${upstream.url}/cut`, sink), HttpClientError)
  assert.ok(written > 0 && written < 10 * MiB)
})
