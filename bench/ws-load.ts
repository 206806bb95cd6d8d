/**
 * WebSocket load for the bench, run as its own process pinned to the load generator's core.
 *
 *   node bench/ws-load.ts echo <ws-url> <connections> <seconds>
 *     each connection sends a message, waits for its echo, sends the next; prints one JSON line:
 *     {"requests","seconds","rps","p50Ms","p90Ms","p99Ms","maxMs","errors"}
 *   node bench/ws-load.ts idle <ws-url> <count>
 *     opens <count> connections and holds them; prints "READY <open> <failed>" once all have
 *     opened or failed, then holds them until stdin closes or SIGTERM, and closes them.
 *
 * Uses Node's own WebSocket client (undici), so the bench needs no extra package.
 */
import { createHistogram } from 'node:perf_hooks'

const [mode, url, countText, secondsText] = process.argv.slice(2)
if (!url || (mode !== 'echo' && mode !== 'idle')) {
  process.stderr.write(
    'usage: ws-load.ts echo <url> <connections> <seconds> | idle <url> <count>\n',
  )
  process.exit(2)
}
const count = Number(countText ?? '64')

/** Opens one socket, retrying a failed handshake twice (a busy server may drop a SYN). */
async function open(target: string): Promise<WebSocket> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openOnce(target)
    } catch (error) {
      if (attempt >= 3) throw error
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt))
    }
  }
}

function openOnce(target: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target)
    const onError = () => reject(new Error('connect failed'))
    socket.addEventListener('error', onError, { once: true })
    socket.addEventListener(
      'open',
      () => {
        socket.removeEventListener('error', onError)
        resolve(socket)
      },
      { once: true },
    )
  })
}

async function echo(target: string, connections: number, seconds: number): Promise<void> {
  const histogram = createHistogram()
  const message = JSON.stringify({ type: 'bench', payload: 'x'.repeat(32) })
  let requests = 0
  let errors = 0
  const sockets = await Promise.all(Array.from({ length: connections }, () => open(target)))
  const startedAt = performance.now()
  const deadline = startedAt + seconds * 1000
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          let sentAt = 0
          const send = () => {
            sentAt = performance.now()
            socket.send(message)
          }
          socket.addEventListener('message', (event) => {
            const now = performance.now()
            if (event.data !== message) errors += 1
            requests += 1
            histogram.record(Math.max(1, Math.round((now - sentAt) * 1000)))
            if (now < deadline) send()
            else resolve()
          })
          socket.addEventListener('close', () => {
            if (performance.now() < deadline) errors += 1
            resolve()
          })
          socket.addEventListener('error', () => {
            errors += 1
          })
          send()
        }),
    ),
  )
  const elapsed = (performance.now() - startedAt) / 1000
  for (const socket of sockets) socket.close(1000)
  const ms = (us: number) => us / 1000
  process.stdout.write(
    `${JSON.stringify({
      requests,
      seconds: elapsed,
      rps: requests / elapsed,
      p50Ms: ms(histogram.percentile(50)),
      p90Ms: ms(histogram.percentile(90)),
      p99Ms: ms(histogram.percentile(99)),
      maxMs: ms(histogram.max),
      errors,
      non2xx: 0,
    })}\n`,
  )
}

async function idle(target: string, total: number): Promise<void> {
  const sockets: WebSocket[] = []
  let failed = 0
  const batch = 250
  for (let at = 0; at < total; at += batch) {
    const opened = await Promise.allSettled(
      Array.from({ length: Math.min(batch, total - at) }, () => open(target)),
    )
    for (const result of opened) {
      if (result.status === 'fulfilled') sockets.push(result.value)
      else failed += 1
    }
  }
  let closedEarly = 0
  for (const socket of sockets) socket.addEventListener('close', () => (closedEarly += 1))
  process.stdout.write(`READY ${sockets.length} ${failed}\n`)
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
    process.once('SIGTERM', resolve)
  })
  process.stdout.write(`CLOSING ${sockets.length - closedEarly} still open\n`)
  for (const socket of sockets) socket.close(1000)
  setTimeout(() => process.exit(0), 2000).unref()
}

if (mode === 'echo') await echo(url, count, Number(secondsText ?? '10'))
else await idle(url, count)
process.exitCode = 0
