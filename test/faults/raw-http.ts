/**
 * Real HTTP for the malformed-input suite, below any client library: requests written as bytes
 * on a fresh socket, a minimal reader of the answer (Content-Length, chunked, 100 Continue,
 * 101), and requests broken at the protocol level (request lines, headers, framing, URLs).
 */
import { connect } from 'node:net'

const MB = 1024 * 1024

/** A request to write: method, target, headers and the raw body. */
export interface RawRequest {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}
/** A request as HTTP/1.1 bytes, Connection: close, with the body's true length. */
export function serialise(request: RawRequest): Buffer {
  const body =
    request.payload === undefined
      ? Buffer.alloc(0)
      : Buffer.isBuffer(request.payload)
        ? request.payload
        : Buffer.from(request.payload)
  const headers = { ...request.headers, host: 'localhost', connection: 'close' }
  if (body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(request.method))
    Object.assign(headers, { 'content-length': String(body.length) })
  else if ('content-length' in headers) delete (headers as Record<string, string>)['content-length']
  const head = `${request.method} ${request.url} HTTP/1.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n')}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

export interface RawAnswer {
  status?: number
  contentType?: string
  body: string
  /** closed with no answer, or the wait ran out */
  outcome: 'answered' | 'closed' | 'timeout'
}

/** Writes `bytes` on a new connection and reads the answer until the server closes. */
export function sendRaw(
  port: number,
  bytes: Buffer,
  isHead: boolean,
  halfClose = false,
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (outcome: RawAnswer['outcome']) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(parseAnswer(Buffer.concat(chunks), isHead, outcome))
    }
    const timer = setTimeout(() => finish('timeout'), 15_000)
    socket.on('connect', () => {
      socket.write(bytes)
      if (halfClose) socket.end()
    })
    socket.on('data', (chunk) => {
      chunks.push(chunk)
      // One answer is all we read: pipelined cases only care about the first.
      const answer = parseAnswer(Buffer.concat(chunks), isHead, 'answered')
      if (answer.complete) finish('answered')
    })
    socket.on('error', () => finish('closed'))
    socket.on('close', () => finish('closed'))
  })
}

function parseAnswer(
  raw: Buffer,
  isHead: boolean,
  outcome: RawAnswer['outcome'],
): RawAnswer & { complete: boolean } {
  // An interim 100 Continue comes before the answer (Expect: 100-continue).
  while (raw.subarray(0, 12).toString('latin1') === 'HTTP/1.1 100') {
    const interimEnd = raw.indexOf('\r\n\r\n')
    if (interimEnd < 0) break
    raw = raw.subarray(interimEnd + 4)
  }
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return { body: '', outcome: raw.length === 0 ? outcome : outcome, complete: false }
  const head = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(head[0]?.split(' ')[1])
  const headers = new Map<string, string>()
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':')
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  let rest = raw.subarray(end + 4)
  let complete = false
  if (isHead || status === 204 || status === 304) complete = true
  else if (status === 101) complete = rest.length > 0
  else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'))
    complete = rest.length >= length
    rest = rest.subarray(0, length)
  } else if (headers.get('transfer-encoding')?.includes('chunked')) {
    const parts: Buffer[] = []
    let offset = 0
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', offset)
      if (lineEnd < 0) break
      const size = Number.parseInt(rest.subarray(offset, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        complete = true
        break
      }
      if (rest.length < lineEnd + 2 + size + 2) break
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      offset = lineEnd + 2 + size + 2
    }
    rest = Buffer.concat(parts)
  }
  const contentType = headers.get('content-type')
  return {
    status,
    ...(contentType === undefined ? {} : { contentType }),
    body: rest.toString(status === 101 ? 'latin1' : 'utf8'),
    outcome,
    complete,
  }
}

export interface ProtocolCase {
  name: string
  bytes: Buffer
  /** The case ends the request early on purpose: a close without an answer is fine. */
  mayCloseSilently?: boolean
  /** A WebSocket upgrade: 101 followed by a close frame is an answer too. */
  isUpgrade?: boolean
  halfClose?: boolean
}

/** Requests broken below the API: request lines, header syntax, framing, URLs. */
export function protocolBreakage(itemId: string): ProtocolCase[] {
  const raw = (name: string, text: string | Buffer, extra: Partial<ProtocolCase> = {}) => ({
    name,
    bytes: Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'),
    ...extra,
  })
  const host = 'Host: localhost\r\nConnection: close\r\n'
  const item = `/api/items/${itemId}`
  const json = '{"name":"x","price":1,"stock":1}'
  return [
    raw('garbage request line', `GARBAGE\r\n\r\n`),
    raw('no version', `GET /health\r\n\r\n`),
    raw('HTTP/9.9', `GET /health HTTP/9.9\r\n${host}\r\n`),
    raw('HTTP/0.9 style', `GET /health\r\n`, { mayCloseSilently: true, halfClose: true }),
    raw('lowercase method', `get /health HTTP/1.1\r\n${host}\r\n`),
    raw('unknown method', `BREW /health HTTP/1.1\r\n${host}\r\n`),
    raw('PROPFIND', `PROPFIND /api/items HTTP/1.1\r\n${host}\r\n`),
    raw('TRACE', `TRACE /api/items HTTP/1.1\r\n${host}\r\n`),
    raw('CONNECT', `CONNECT localhost:80 HTTP/1.1\r\n${host}\r\n`),
    raw('space in URL', `GET /api/items/a b HTTP/1.1\r\n${host}\r\n`),
    raw('NUL in URL', `GET /api/items/1\u0000 HTTP/1.1\r\n${host}\r\n`),
    raw('bad percent in URL', `GET /api/items/%zz HTTP/1.1\r\n${host}\r\n`),
    raw('truncated percent in URL', `GET /api/items/%E0%A4%A HTTP/1.1\r\n${host}\r\n`),
    raw('absolute-form URL', `GET http://evil.example/api/items HTTP/1.1\r\n${host}\r\n`),
    raw('asterisk URL', `OPTIONS * HTTP/1.1\r\n${host}\r\n`),
    raw('relative URL', `GET api/items HTTP/1.1\r\n${host}\r\n`),
    raw('dot segments', `GET /api/../api/./items/../../etc/passwd HTTP/1.1\r\n${host}\r\n`),
    raw('double slashes', `GET //api//items HTTP/1.1\r\n${host}\r\n`),
    raw('backslashes', `GET /api\\items HTTP/1.1\r\n${host}\r\n`),
    raw('100 KB URL', `GET /api/items?q=${'a'.repeat(100_000)} HTTP/1.1\r\n${host}\r\n`),
    raw('long path parameter', `GET /api/items/${'1'.repeat(2000)} HTTP/1.1\r\n${host}\r\n`),
    raw(
      'raw UTF-8 in URL',
      Buffer.concat([
        Buffer.from('GET /api/items/'),
        Buffer.from('ünï', 'utf8'),
        Buffer.from(` HTTP/1.1\r\n${host}\r\n`),
      ]),
    ),
    raw(
      'invalid UTF-8 in URL',
      Buffer.concat([
        Buffer.from('GET /api/items/'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from(` HTTP/1.1\r\n${host}\r\n`),
      ]),
    ),
    raw('no Host', `GET /health HTTP/1.1\r\nConnection: close\r\n\r\n`),
    raw('two Hosts', `GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n`),
    raw('header without colon', `GET /health HTTP/1.1\r\n${host}NoColonHere\r\n\r\n`),
    raw('space before colon', `GET /health HTTP/1.1\r\n${host}X-Bad : 1\r\n\r\n`),
    raw('control byte in header', `GET /health HTTP/1.1\r\n${host}X-Bad: a\u0001b\r\n\r\n`),
    raw('NUL in header', `GET /health HTTP/1.1\r\n${host}X-Bad: a\u0000b\r\n\r\n`),
    raw('obs-fold header', `GET /health HTTP/1.1\r\n${host}X-Folded: a\r\n b\r\n\r\n`),
    raw('bare LF lines', `GET /health HTTP/1.1\nHost: localhost\nConnection: close\n\n`),
    raw('bare CR', `GET /health HTTP/1.1\rHost: localhost\r\n\r\n`),
    raw('20 KB header', `GET /health HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
    raw('2,000 headers', `GET /health HTTP/1.1\r\n${host}${'X-H: 1\r\n'.repeat(2000)}\r\n`),
    raw(
      'bad Content-Length',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: abc\r\n\r\n${json}`,
    ),
    raw(
      'negative Content-Length',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: -5\r\n\r\n${json}`,
    ),
    raw(
      'two Content-Lengths',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 32\r\n\r\n${json}`,
    ),
    raw(
      'Content-Length and chunked',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ),
    raw(
      'bad chunk size',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${json}\r\n0\r\n\r\n`,
    ),
    raw(
      'unknown transfer coding',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n${json}`,
    ),
    raw(
      'chunked body, bad JSON',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n0\r\n\r\n`,
    ),
    raw(
      'gzip body that is not gzip',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
    ),
    raw(
      '17 MB chunked body',
      Buffer.concat([
        Buffer.from(
          `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        ),
        Buffer.from(`${(17 * MB).toString(16)}\r\n`),
        Buffer.alloc(17 * MB, 0x61),
        Buffer.from('\r\n0\r\n\r\n'),
      ]),
      { mayCloseSilently: true },
    ),
    raw(
      '17 MB Content-Length',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${17 * MB}\r\n\r\n{"name":"`,
      { mayCloseSilently: true, halfClose: true },
    ),
    raw(
      'body shorter than Content-Length',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":1}`,
      { mayCloseSilently: true, halfClose: true },
    ),
    raw(
      'body longer than Content-Length',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n${json}`,
    ),
    raw(
      'GET with a body',
      `GET /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
    ),
    raw(
      'pipelined requests',
      `GET /health HTTP/1.1\r\nHost: localhost\r\n\r\nGET /nope HTTP/1.1\r\n${host}\r\n`,
    ),
    raw(
      'request smuggling attempt',
      `POST /health HTTP/1.1\r\n${host}Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/users/me HTTP/1.1\r\nHost: x\r\n\r\n`,
    ),
    raw(
      'Expect 100-continue',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
    ),
    raw(
      'unknown Expect',
      `POST /api/items HTTP/1.1\r\n${host}Content-Type: application/json\r\nExpect: teapot\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
    ),
    raw(
      'Upgrade to h2c',
      `GET /health HTTP/1.1\r\n${host}Upgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n`,
    ),
    raw(
      'WebSocket upgrade on an API route',
      `GET ${item} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      { isUpgrade: true },
    ),
    raw('HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    raw(
      'TLS hello on plain port',
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
    ),
    raw(
      'random bytes',
      Buffer.from(Array.from({ length: 512 }, (_, index) => (index * 131 + 7) % 256)),
    ),
    raw('only CRLFs', '\r\n\r\n\r\n\r\n'),
    raw('truncated head', `GET /health HTTP/1.1\r\nHost: loc`, {
      mayCloseSilently: true,
      halfClose: true,
    }),
    raw('HTTP/1.0 keep-alive', `GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`),
  ]
}
