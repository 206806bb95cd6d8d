import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sendJson, startUpstream } from '../../src/infra/http-client/test-upstream.ts'
import { integrationApp } from './helpers.ts'

/** An upstream answering `body` with `status` after `delayMs`; counts calls cut off early. */
async function delayed(
  t: Parameters<typeof startUpstream>[0],
  delayMs: number,
  status: number,
  body: unknown,
) {
  let cutOff = 0
  const upstream = await startUpstream(t, async (request, response) => {
    let isGone = false
    request.socket.once('close', () => {
      isGone = true
    })
    const until = Date.now() + delayMs
    while (Date.now() < until && !isGone) await sleep(10)
    if (isGone || response.destroyed) {
      cutOff++
      return
    }
    sendJson(response, status, body)
  })
  return {
    url: upstream.url,
    /** Calls whose client went away before the answer was due. */
    get cutOff() {
      return cutOff
    },
  }
}

test('/api/aggregate calls every upstream at once and answers with what arrived by the deadline', async (t) => {
  const fast = await delayed(t, 20, 200, { stock: 12 })
  const medium = await delayed(t, 150, 200, { price: 9.5 })
  const broken = await delayed(t, 10, 500, { detail: 'boom' })
  const slow = await delayed(t, 5000, 200, { late: true })
  const { baseUrl } = await integrationApp(t, {
    AGGREGATE_UPSTREAMS: [
      `stock=${fast.url}/stock`,
      `price=${medium.url}/price`,
      `reviews=${broken.url}/reviews`,
      `related=${slow.url}/related`,
    ].join(','),
    AGGREGATE_DEADLINE_MS: '600',
  })

  const started = performance.now()
  const response = await fetch(`${baseUrl}/api/aggregate`)
  const elapsedMs = performance.now() - started
  assert.equal(response.status, 200)
  const body = (await response.json()) as {
    results: Record<string, { status: number; data: unknown }>
    failed: Record<string, { status: number; detail: string }>
    timed_out: string[]
    elapsed_ms: number
  }
  t.diagnostic(`aggregate in ${elapsedMs.toFixed(0)} ms: ${JSON.stringify(body)}`)
  assert.deepEqual(body.results, {
    stock: { status: 200, data: { stock: 12 } },
    price: { status: 200, data: { price: 9.5 } },
  })
  assert.deepEqual(body.failed, { reviews: { status: 500, detail: 'answered 500' } })
  assert.deepEqual(body.timed_out, ['related'])
  // At once, not one after another, and no later than the deadline.
  assert.ok(body.elapsed_ms >= 590 && body.elapsed_ms < 1500, `elapsed ${body.elapsed_ms}`)
  for (let wait = 0; slow.cutOff === 0 && wait < 100; wait++) await sleep(20)
  assert.equal(slow.cutOff, 1, 'the call still running at the deadline was cancelled')

  const quick = (await (await fetch(`${baseUrl}/api/aggregate?deadline_ms=80`)).json()) as {
    results: Record<string, unknown>
    timed_out: string[]
  }
  assert.deepEqual(Object.keys(quick.results), ['stock'])
  assert.deepEqual(quick.timed_out.toSorted(), ['price', 'related'])

  const bad = await fetch(`${baseUrl}/api/aggregate?deadline_ms=0`)
  assert.equal(bad.status, 422)
})

test('/api/aggregate/fastest answers with the first good answer and cancels the others', async (t) => {
  const slowMirror = await delayed(t, 3000, 200, { from: 'slow' })
  const fastMirror = await delayed(t, 50, 200, { from: 'fast' })
  const failing = await delayed(t, 5, 503, { detail: 'down' })
  const { baseUrl } = await integrationApp(t, {
    AGGREGATE_UPSTREAMS: `slow=${slowMirror.url}/x,fast=${fastMirror.url}/x,failing=${failing.url}/x`,
    AGGREGATE_DEADLINE_MS: '2000',
  })
  const response = await fetch(`${baseUrl}/api/aggregate/fastest`)
  assert.equal(response.status, 200)
  const body = (await response.json()) as { upstream: string; data: unknown; elapsed_ms: number }
  assert.equal(body.upstream, 'fast')
  assert.deepEqual(body.data, { from: 'fast' })
  assert.ok(body.elapsed_ms < 1000, `elapsed ${body.elapsed_ms}`)
  for (let wait = 0; slowMirror.cutOff === 0 && wait < 100; wait++) await sleep(20)
  assert.equal(slowMirror.cutOff, 1, 'the slower call was cancelled')

  const timedOut = await fetch(`${baseUrl}/api/aggregate/fastest?deadline_ms=20`)
  assert.equal(timedOut.status, 504)
  assert.equal(((await timedOut.json()) as { code: string }).code, 'UPSTREAM_TIMEOUT')
})

test('/api/aggregate/fastest answers 502 when every upstream fails, 503 when none is configured', async (t) => {
  const down = await delayed(t, 5, 500, {})
  const alsoDown = await delayed(t, 5, 404, {})
  const { baseUrl } = await integrationApp(t, {
    AGGREGATE_UPSTREAMS: `a=${down.url}/x,b=${alsoDown.url}/x`,
  })
  const failed = await fetch(`${baseUrl}/api/aggregate/fastest`)
  assert.equal(failed.status, 502)
  const body = (await failed.json()) as { detail: string; code: string }
  assert.equal(body.code, 'AGGREGATE_ALL_FAILED')
  assert.equal(body.detail, 'Every upstream failed (a: answered 500; b: answered 404)')

  const none = await integrationApp(t)
  assert.equal((await fetch(`${none.baseUrl}/api/aggregate/fastest`)).status, 503)
  const empty = await fetch(`${none.baseUrl}/api/aggregate`)
  assert.deepEqual(await empty.json().then((value) => ({ ...(value as object), elapsed_ms: 0 })), {
    results: {},
    failed: {},
    timed_out: [],
    elapsed_ms: 0,
  })
})
