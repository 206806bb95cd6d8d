import { once } from 'node:events'
import { get as httpGet, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { connect as connectTcp, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/*
 * Test clients for the realtime routes: a WebSocket client (Node's own), a raw client that can
 * send any bytes after the upgrade, and an SSE reader.
 */

/** Waits (bounded) until `condition` holds. */
export async function eventually(
  condition: () => boolean,
  what: string,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

export interface TestSocket {
  readonly ws: WebSocket
  /** Messages received and not yet taken. */
  readonly inbox: Array<string | Buffer>
  send(data: string | Uint8Array): void
  next(timeoutMs?: number): Promise<string | Buffer>
  nextJson(timeoutMs?: number): Promise<Record<string, unknown>>
  /** Resolves with the close code and reason once the socket has closed. */
  readonly closed: Promise<{ code: number; reason: string }>
  readonly isClosed: boolean
  close(): void
}

/** Opens a WebSocket (Node's built-in client, which answers pings as browsers do). */
export async function openSocket(url: string): Promise<TestSocket> {
  const ws = new WebSocket(url)
  ws.binaryType = 'arraybuffer'
  const inbox: Array<string | Buffer> = []
  let isClosed = false
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener('close', (event) => {
      isClosed = true
      resolve({ code: event.code, reason: event.reason })
    })
  })
  ws.addEventListener('message', (event) => {
    inbox.push(typeof event.data === 'string' ? event.data : Buffer.from(event.data as ArrayBuffer))
  })
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true })
    ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true })
  })
  const socket: TestSocket = {
    ws,
    inbox,
    send: (data) => ws.send(data),
    async next(timeoutMs = 3000) {
      await eventually(() => inbox.length > 0, `a message on ${url}`, timeoutMs)
      return inbox.shift() as string | Buffer
    },
    async nextJson(timeoutMs) {
      const message = await socket.next(timeoutMs)
      return JSON.parse(String(message)) as Record<string, unknown>
    },
    closed,
    get isClosed() {
      return isClosed
    },
    close: () => ws.close(),
  }
  return socket
}

/** Opens a socket the server closes during the handshake; resolves with the close code. */
export async function closeCodeOf(url: string): Promise<{ code: number; reason: string }> {
  const socket = await openSocket(url)
  return socket.closed
}

export interface ServerFrame {
  opcode: number
  payload: Buffer
}

/** A TCP connection upgraded to WebSocket by hand: it can send anything at all. */
export interface RawSocket {
  readonly socket: Socket
  readonly frames: ServerFrame[]
  /** Sends one frame, masked unless told otherwise (clients must mask). */
  sendFrame(opcode: number, payload: Buffer, options?: { isMasked?: boolean }): boolean
  /** The close code of the close frame the server sent, once it did. */
  closeCode(): number | undefined
  /** Resolves once the TCP connection has ended. */
  readonly ended: Promise<void>
  readonly isEnded: boolean
}

/** Connects to 127.0.0.1:`port` and upgrades `path` to a WebSocket. */
export async function openRawSocket(port: number, path: string): Promise<RawSocket> {
  const socket = connectTcp({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Version: 13\r\n\r\n',
  )
  let buffer: Buffer = Buffer.alloc(0)
  let isUpgraded = false
  let isEnded = false
  const frames: ServerFrame[] = []
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => {
      isEnded = true
      resolve()
    })
  })
  socket.on('error', () => {})
  const upgraded = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      if (!isUpgraded) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buffer.subarray(0, end).toString()
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy()
          reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`))
          return
        }
        isUpgraded = true
        buffer = buffer.subarray(end + 4)
        resolve()
      }
      buffer = parseFrames(buffer, frames)
    })
  })
  await upgraded
  return {
    socket,
    frames,
    sendFrame(opcode, payload, { isMasked = true } = {}) {
      return socket.write(encodeFrame(opcode, payload, isMasked))
    },
    closeCode() {
      const close = frames.find((frame) => frame.opcode === 8)
      return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined
    },
    ended,
    get isEnded() {
      return isEnded
    },
  }
}

/** One final frame, as a client sends it. */
export function encodeFrame(opcode: number, payload: Buffer, isMasked = true): Buffer {
  const length = payload.length
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, length])
      : length < 65536
        ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigEndian64(length)])
  if (!isMasked) return Buffer.concat([header, payload])
  header[1] = (header[1] as number) | 0x80
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.from(payload)
  for (let index = 0; index < masked.length; index++) {
    masked[index] = (masked[index] as number) ^ (mask[index % 4] as number)
  }
  return Buffer.concat([header, mask, masked])
}

function bigEndian64(value: number): Buffer {
  const bytes = Buffer.alloc(8)
  bytes.writeBigUInt64BE(BigInt(value))
  return bytes
}

/** Takes whole server frames off `buffer` into `frames`; returns what is left. */
function parseFrames(buffer: Buffer, frames: ServerFrame[]): Buffer {
  let rest = buffer
  for (;;) {
    if (rest.length < 2) return rest
    const opcode = (rest[0] as number) & 0x0f
    let length = (rest[1] as number) & 0x7f
    let offset = 2
    if (length === 126) {
      if (rest.length < 4) return rest
      length = rest.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (rest.length < 10) return rest
      length = Number(rest.readBigUInt64BE(2))
      offset = 10
    }
    if (rest.length < offset + length) return rest
    frames.push({ opcode, payload: Buffer.from(rest.subarray(offset, offset + length)) })
    rest = rest.subarray(offset + length)
  }
}

export interface SseMessage {
  id?: string
  event?: string
  data: string
}

export interface SseReader {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly events: SseMessage[]
  /** Waits (bounded) for `count` events in all. */
  waitFor(count: number, timeoutMs?: number): Promise<SseMessage[]>
  /** Resolves once the stream has ended, by the server or by `abort`. */
  readonly ended: Promise<void>
  /** Closes the connection, as a browser tab going away would. */
  abort(): void
}

/**
 * Opens an event stream on a connection of its own (node:http, no pooling: closing it closes
 * exactly that connection) and parses it as it arrives.
 */
export async function readSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const request = httpGet(url, {
    agent: false,
    headers: { accept: 'text/event-stream', ...headers },
  })
  const [response] = (await once(request, 'response')) as [IncomingMessage]
  const events: SseMessage[] = []
  const ended = new Promise<void>((resolve) => {
    response.once('close', () => resolve())
    request.once('error', () => resolve())
  })
  response.on('error', () => {})
  let buffer = ''
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => {
    buffer += chunk
    const blocks = buffer.split('\n\n')
    buffer = blocks.pop() ?? ''
    for (const block of blocks) {
      const event: SseMessage = { data: '' }
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'data') data.push(value)
        else if (field === 'id') event.id = value
        else if (field === 'event') event.event = value
      }
      if (data.length === 0) continue
      event.data = data.join('\n')
      events.push(event)
    }
  })
  return {
    status: response.statusCode ?? 0,
    headers: response.headers,
    events,
    async waitFor(count, timeoutMs = 3000) {
      const what = `${count} SSE events from ${url} (HTTP ${response.statusCode})`
      await eventually(() => events.length >= count, what, timeoutMs)
      return events
    },
    ended,
    abort: () => request.destroy(),
  }
}

/** The whole body of a GET, on a connection of its own. */
export async function getText(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const request = httpGet(url, { agent: false, headers })
  const [response] = (await once(request, 'response')) as [IncomingMessage]
  response.setEncoding('utf8')
  let body = ''
  for await (const chunk of response) body += chunk
  return { status: response.statusCode ?? 0, headers: response.headers, body }
}
