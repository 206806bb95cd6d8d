/**
 * Item 7: malformed requests generated from the OpenAPI document the app serves. 10,000 go
 * through Fastify's inject into an app built in this process (so a polluted Object.prototype
 * would show here), then 1,000 over real HTTP on raw sockets: 700 generated ones written as
 * bytes, 300 broken at the protocol level (request lines, headers, URLs, framing). No answer may
 * be a 5xx; every 4xx must be in the API's error shape; every 2xx must match the schema the
 * document gives for it; the heap after GC may grow less than 50 MB over the second half.
 */
import assert from 'node:assert/strict'
import { createServer as createHttpServer, type Server } from 'node:http'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { expectFigure } from './figures.ts'
import {
  createAnswerChecker,
  exampleOf,
  fillPath,
  loadOperations,
  nameOf,
  type Operation,
  type Parameter,
  propertiesOf,
} from './openapi-helpers.ts'
import {
  type ProtocolCase,
  protocolBreakage,
  type RawAnswer,
  sendRaw,
  serialise,
} from './raw-http.ts'

const INJECTED = 10_000
const OVER_HTTP = 700
const RAW_PROTOCOL = 300
const MB = 1024 * 1024
const HEAP_GROWTH_LIMIT_MB = 50
const SEED = Number(process.env.FAULTS_SEED ?? Date.now() % 1_000_000)

// Heap figures are taken after a full collection; `node --test` gives no --expose-gc, so the
// flag is set at run time and `gc` fetched from a fresh context.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/** One generated request. `payload` is the raw body as it goes on the wire. */
interface Case {
  kind: string
  operation?: Operation
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

interface Tally {
  sent: number
  serverErrors: number
  offShape: number
  badSuccess: number
  byStatus: Map<number, number>
  byKind: Map<string, number>
  samples: string[]
}

const newTally = (): Tally => ({
  sent: 0,
  serverErrors: 0,
  offShape: 0,
  badSuccess: 0,
  byStatus: new Map(),
  byKind: new Map(),
  samples: [],
})

/** mulberry32: a small seeded generator, so a failing run can be replayed with FAULTS_SEED. */
function random(seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let value = state
    value = Math.imul(value ^ (value >>> 15), value | 1)
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61)
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296
  }
  return {
    next,
    int: (below: number) => Math.floor(next() * below),
    pick: <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T,
  }
}
type Random = ReturnType<typeof random>

const TEN_MB = 'A'.repeat(10 * MB)
const ONE_MB = 'B'.repeat(MB)
const WRONG_TYPES: readonly unknown[] = [
  123,
  -1,
  1.5,
  0,
  'text',
  '',
  true,
  false,
  null,
  [],
  [1, 'a'],
  {},
  { nested: { value: 1 } },
  '9'.repeat(400),
]
const EXTRA_FIELDS = [
  'id',
  'creator_id',
  'owner_id',
  'user_id',
  'role',
  'is_admin',
  'status',
  'stock',
  'created_at',
  'deleted_at',
  'password_hash',
  'x-unknown',
  '',
  'ünïcødé',
]
const BAD_JSON = [
  '',
  '{',
  '}',
  '{"a":',
  '{"a":1,}',
  "{'a':1}",
  '{a:1}',
  'NaN',
  'undefined',
  '[1,2',
  '{"a":1}{"b":2}',
  'null',
  '"a string"',
  '123',
  'true',
  '[]',
  '\u0000',
  '{"a":"\\x"}',
  '{"a":"\\ud800"}',
  '\ufeff{"a":1}',
  '{"a":1e999}',
  '{"a":--1}',
  '{"a":01}',
  '{"a":0x10}',
  '{"a":Infinity}',
  '/* comment */ {}',
  '{"a":1} trailing',
  '{"__proto__":',
]
const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=----x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/octet-stream',
  'application/x-www-form-urlencoded',
  'APPLICATION/JSON',
  'application/jsonx',
  'application/vnd.api+json',
  'application/json;;;',
  'text/html; charset=utf-8',
  '*/*',
  'json',
  '',
]
const BAD_PATH_VALUES = [
  'abc',
  '-1',
  '0',
  '99999999999999999999',
  '1.5',
  '1e3',
  '0x10',
  '%00',
  '1%00',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..',
  '%',
  '%E0%A4%A',
  '%ff%fe',
  '%C3%BC',
  '%F0%9F%98%80',
  '1;DROP%20TABLE%20items',
  "1'%20OR%20'1'='1",
  '%201',
  '1%20',
  '__proto__',
  'constructor',
  'prototype',
  '%5F%5Fproto%5F%5F',
  '9'.repeat(120),
  '1'.repeat(5000),
  '%0d%0aSet-Cookie:%20x=1',
  '%u0041',
]
const BAD_QUERY_VALUES = [
  'abc',
  '-1',
  '0',
  '1.5',
  '1e999',
  '99999999999999999999999',
  '',
  '%',
  '%E0%A4%A',
  '%ff',
  '[]',
  '{}',
  'null',
  'true',
  'NaN',
  '١٢',
  '0x10',
  '-0.0000001',
]

/** The requests that break one thing of `operation`, by kind; each takes a random generator. */
function mutatorsFor(operation: Operation, context: FuzzContext) {
  const mutators: Array<[string, (rng: Random) => Case]> = []
  const base = (rng: Random, overrides: Partial<Case> = {}): Case => {
    const headers: Record<string, string> = {}
    if (operation.isSecured && !operation.path.includes('logout') && rng.next() < 0.7)
      headers.authorization = `Bearer ${context.token}`
    let payload: string | undefined
    if (operation.body) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(validBody(operation, context))
    }
    return {
      kind: '',
      operation,
      method: operation.method,
      url: validUrl(operation, context),
      headers,
      ...(payload === undefined ? {} : { payload }),
      ...overrides,
    }
  }
  const withBody = (rng: Random, kind: string, payload: string | Buffer, type?: string): Case => {
    const request = base(rng, { kind })
    request.payload = payload
    if (type !== undefined) {
      if (type === '') delete request.headers['content-type']
      else request.headers['content-type'] = type
    }
    return request
  }
  const replaceIn = (rng: Random, text: (value: string) => string) => {
    const body = validBody(operation, context) as Record<string, unknown>
    const names = Object.keys(propertiesOf(operation.body ?? {}))
    const name = names.length > 0 ? rng.pick(names) : 'value'
    body[name] = '\u0000MARK\u0000'
    return JSON.stringify(body).replace('"\\u0000MARK\\u0000"', text(name))
  }

  if (operation.body) {
    const properties = propertiesOf(operation.body)
    const names = Object.keys(properties)
    mutators.push([
      'wrong type',
      (rng) => {
        const body = validBody(operation, context) as Record<string, unknown>
        const name = names.length > 0 ? rng.pick(names) : 'value'
        body[name] = rng.pick(WRONG_TYPES)
        return withBody(rng, 'wrong type', JSON.stringify(rng.next() < 0.1 ? [body] : body))
      },
    ])
    mutators.push([
      'missing field',
      (rng) => {
        const body = validBody(operation, context) as Record<string, unknown>
        const required = Object.keys(body)
        if (required.length > 0) delete body[rng.pick(required)]
        return withBody(rng, 'missing field', JSON.stringify(rng.next() < 0.2 ? {} : body))
      },
    ])
    mutators.push([
      'extra fields',
      (rng) => {
        const body = validBody(operation, context) as Record<string, unknown>
        for (let count = 1 + rng.int(4); count > 0; count--)
          body[rng.pick(EXTRA_FIELDS)] = rng.pick(WRONG_TYPES)
        return withBody(rng, 'extra fields', JSON.stringify(body))
      },
    ])
    mutators.push([
      'prototype pollution',
      (rng) => {
        const valid = JSON.stringify(validBody(operation, context)).slice(1, -1)
        const sep = valid === '' ? '' : ','
        const name = names.length > 0 ? rng.pick(names) : 'value'
        const attacks = [
          `{"__proto__":{"polluted":"yes","is_admin":true}${sep}${valid}}`,
          `{${valid}${sep}"constructor":{"prototype":{"polluted":"yes"}}}`,
          `{${valid}${sep}"${name}":{"__proto__":{"polluted":"yes"}}}`,
          `{${valid}${sep}"${name}":[{"constructor":{"prototype":{"polluted":"yes"}}}]}`,
          `{"\\u005f_proto__":{"polluted":"yes"}${sep}${valid}}`,
          `{${valid}${sep}"prototype":{"polluted":"yes"}}`,
        ]
        if (rng.next() < 0.25)
          return withBody(
            rng,
            'prototype pollution',
            `__proto__[polluted]=yes&constructor[prototype][polluted]=yes&${name}=1`,
            'application/x-www-form-urlencoded',
          )
        return withBody(rng, 'prototype pollution', rng.pick(attacks))
      },
    ])
    mutators.push([
      '10 MB string',
      (rng) => {
        // One in four is 10 MB, the rest 1 MB: the same code path at a tenth of the time.
        const big = rng.next() < 0.25 ? TEN_MB : ONE_MB
        if (rng.next() < 0.15) return withBody(rng, '10 MB string', JSON.stringify(big))
        return withBody(
          rng,
          '10 MB string',
          replaceIn(rng, () => `"${big}"`),
        )
      },
    ])
    mutators.push([
      'deep nesting',
      (rng) => {
        const depth = rng.pick([1_000, 10_000, 10_000, 100_000, 100_000, 1_000_000])
        const open = rng.next() < 0.5 ? '[' : '{"a":'
        const close = open === '[' ? ']' : '}'
        const deep = `${open.repeat(depth)}1${close.repeat(depth)}`
        if (rng.next() < 0.2) return withBody(rng, 'deep nesting', deep)
        return withBody(
          rng,
          'deep nesting',
          replaceIn(rng, () => deep),
        )
      },
    ])
    mutators.push([
      'bad UTF-8',
      (rng) => {
        const bytes = rng.pick([
          [0xff, 0xfe],
          [0xc3, 0x28],
          [0xa0, 0xa1],
          [0xe2, 0x28, 0xa1],
          [0xf0, 0x28, 0x8c, 0xbc],
          [0xed, 0xa0, 0x80],
          [0xc0, 0xaf],
          [0x00],
        ])
        const text = replaceIn(rng, () => '"\u0001BYTES\u0001"')
        const [before, after] = text.split('\u0001BYTES\u0001')
        const payload = Buffer.concat([
          Buffer.from(before ?? ''),
          Buffer.from(bytes),
          Buffer.from(after ?? ''),
        ])
        if (rng.next() < 0.3)
          return withBody(
            rng,
            'bad UTF-8',
            replaceIn(rng, () => '"\\udc00 lone \\ud800"'),
          )
        return withBody(rng, 'bad UTF-8', payload)
      },
    ])
    mutators.push(['bad JSON', (rng) => withBody(rng, 'bad JSON', rng.pick(BAD_JSON))])
    mutators.push([
      'wrong content type',
      (rng) => {
        const type = rng.pick(CONTENT_TYPES)
        const valid = validBody(operation, context) as Record<string, unknown>
        const payload =
          type === 'application/x-www-form-urlencoded' && rng.next() < 0.5
            ? new URLSearchParams(
                Object.entries(valid).map(([key, value]): [string, string] => [key, String(value)]),
              ).toString()
            : rng.next() < 0.3
              ? '<xml><name>x</name></xml>'
              : JSON.stringify(valid)
        return withBody(rng, 'wrong content type', payload, type)
      },
    ])
    mutators.push([
      'edge numbers',
      (rng) => {
        const numeric = names.filter((name) => {
          const type = properties[name]?.type
          return type === 'number' || type === 'integer'
        })
        const edges = [
          '-1',
          '-0',
          '1e308',
          '1e999',
          '-1e999',
          '9007199254740993',
          '1e-320',
          '1.5',
          '2147483648',
        ]
        if (numeric.length === 0)
          return withBody(
            rng,
            'edge numbers',
            replaceIn(rng, () => rng.pick(edges)),
          )
        const body = validBody(operation, context) as Record<string, unknown>
        body[rng.pick(numeric)] = '\u0000NUM\u0000'
        return withBody(
          rng,
          'edge numbers',
          JSON.stringify(body).replace('"\\u0000NUM\\u0000"', rng.pick(edges)),
        )
      },
    ])
    mutators.push([
      'huge array',
      (rng) => {
        const length = rng.pick([10_001, 10_001, 100_001, 100_001, 1_000_000])
        return withBody(
          rng,
          'huge array',
          replaceIn(rng, () => `[${'1,'.repeat(length - 1)}1]`),
        )
      },
    ])
  }
  if (operation.pathParams.length > 0) {
    mutators.push([
      'bad path parameter',
      (rng) => {
        const values: Record<string, string> = {}
        for (const parameter of operation.pathParams)
          values[parameter.name] = rng.pick(BAD_PATH_VALUES)
        return base(rng, { kind: 'bad path parameter', url: fillPath(operation.path, values) })
      },
    ])
  }
  mutators.push([
    'bad query string',
    (rng) => {
      const path = validUrl(operation, context).split('?')[0] as string
      const names = operation.query.map((parameter) => parameter.name)
      const name = names.length > 0 ? rng.pick(names) : 'page'
      const parameter = operation.query.find((candidate) => candidate.name === name)
      const valid = parameter ? validQueryValue(parameter) : '1'
      const queries = [
        `${name}=${rng.pick(BAD_QUERY_VALUES)}`,
        `${name}=${valid}&${name}=${valid}`,
        `${name}[]=1`,
        `${name}[a][b]=1`,
        `__proto__[polluted]=yes&${name}=${valid}`,
        `constructor[prototype][polluted]=yes`,
        `__proto__=x&constructor=y&prototype=z`,
        `${name}=${'9'.repeat(10_000)}`,
        `${name}=${TEN_MB}`,
        '&&&===&&',
        '%',
        Array.from({ length: 10_000 }, (_, index) => `p${index}=${index}`).join('&'),
        `${name}=%00`,
        `${name}=${valid}#fragment`,
      ]
      return base(rng, { kind: 'bad query string', url: `${path}?${rng.pick(queries)}` })
    },
  ])
  mutators.push([
    'bad headers',
    (rng) => {
      const request = base(rng, { kind: 'bad headers' })
      const [header, value] = rng.pick<[string, string]>([
        ['authorization', 'Bearer'],
        ['authorization', `Bearer ${'a'.repeat(10_000)}`],
        ['authorization', 'Bearer a.b.c'],
        ['authorization', 'Basic YWxpY2U6cGFzc3dvcmQ='],
        ['authorization', `Bearer ${context.token}x`],
        ['authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'],
        ['idempotency-key', ''],
        ['idempotency-key', 'k'.repeat(65)],
        ['idempotency-key', 'has space'],
        ['x-request-id', 'r'.repeat(5000)],
        ['x-request-id', '\t'],
        ['traceparent', '00-zz-zz-01'],
        ['traceparent', `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`],
        ['x-forwarded-for', 'not-an-address, ::::'],
        ['accept', 'application/xml'],
        ['accept', '*/*;q=abc'],
        ['accept-version', '1.x'],
        ['accept-encoding', 'gzip;q=2, br;q=-1, zz'],
        ['content-length', '5'],
        ['content-type', 'application/json; boundary=="'],
        ['origin', 'https://evil.example'],
        ['cookie', 'a=b; '.repeat(500)],
      ])
      request.headers[header] = value
      return request
    },
  ])
  mutators.push([
    'wrong method',
    (rng) => {
      const method = rng.pick(['PUT', 'PATCH', 'DELETE', 'POST', 'OPTIONS', 'HEAD', 'GET'])
      const request = base(rng, { kind: 'wrong method', method })
      if (method === 'GET' || method === 'HEAD') {
        delete request.payload
        delete request.headers['content-type']
      }
      return request
    },
  ])
  return mutators
}

interface FuzzContext {
  token: string
  itemId: string
  orderId: string
  taskId: string
}

function validBody(operation: Operation, context: FuzzContext): unknown {
  const body = exampleOf(operation.body ?? {}) as Record<string, unknown>
  if (body && typeof body === 'object' && 'item_id' in body) body.item_id = context.itemId
  if (operation.path === '/api/auth/register')
    return { username: `user${Math.random().toString(36).slice(2, 10)}`, password: 'password123' }
  if (operation.path === '/api/auth/login') return { username: 'alice', password: 'password123' }
  return body
}

function validUrl(operation: Operation, context: FuzzContext): string {
  const values: Record<string, string> = {}
  for (const parameter of operation.pathParams)
    values[parameter.name] =
      parameter.name === 'task_id'
        ? context.taskId
        : operation.path.startsWith('/api/orders')
          ? context.orderId
          : context.itemId
  const query = new URLSearchParams()
  for (const parameter of operation.query)
    if (parameter.required) query.set(parameter.name, validQueryValue(parameter))
  const search = query.toString()
  return fillPath(operation.path, values) + (search ? `?${search}` : '')
}

/**
 * A valid value for a query parameter: its default, else the example, except for deadlines
 * (`*_ms`), which get 5 s: a 1 ms deadline makes the upstream routes answer a documented 504.
 */
function validQueryValue(parameter: Parameter): string {
  const { schema } = parameter
  if ('default' in schema) return String(schema.default)
  if (parameter.name.endsWith('_ms') && schema.type === 'integer')
    return String(Math.min(Number(schema.maximum ?? 5000), 5000))
  return String(exampleOf(schema))
}

/** Checks one answer and counts it; returns nothing, records samples of what failed. */
function record(
  tally: Tally,
  checker: ReturnType<typeof createAnswerChecker>,
  request: Case,
  documented: Map<string, Operation>,
  status: number,
  contentType: string | undefined,
  body: string,
): void {
  tally.sent++
  tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1)
  tally.byKind.set(request.kind, (tally.byKind.get(request.kind) ?? 0) + 1)
  const where = `${request.kind}: ${request.method} ${request.url.slice(0, 80)}`
  const note = (problem: string) => noteSample(tally, `${where} → ${status} ${problem}`)
  if (status >= 500) {
    tally.serverErrors++
    note(body.slice(0, 160))
    return
  }
  if (status >= 400) {
    // A HEAD answer has no body by definition: its headers still say JSON.
    const problem =
      request.method === 'HEAD'
        ? contentType?.startsWith('application/json')
          ? undefined
          : `content-type ${contentType}`
        : checker.checkError(status, contentType, body)
    if (problem) {
      tally.offShape++
      note(problem)
    }
    return
  }
  const pathOnly = request.url.split('?')[0] ?? ''
  const operation = [...documented.values()].find(
    (candidate) =>
      candidate.method === request.method &&
      new RegExp(`^${candidate.path.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(pathOnly),
  )
  if (request.method === 'HEAD' || request.method === 'OPTIONS') {
    if (body !== '') {
      tally.badSuccess++
      note(`body on ${request.method}`)
    }
    return
  }
  const problem = operation
    ? checker.checkSuccess(operation, status, contentType, body)
    : `2xx for an undocumented route`
  if (problem) {
    tally.badSuccess++
    note(problem)
  }
}

/** Keeps one sample per kind of problem (the kind, the status and the start of the reason). */
function noteSample(tally: Tally, line: string): void {
  const signature = line.replace(/\d{6,}/g, 'N').slice(0, 70)
  const seen = tally.samples.map((sample) => sample.replace(/\d{6,}/g, 'N').slice(0, 70))
  if (tally.samples.length < 25 && !seen.includes(signature)) tally.samples.push(line)
}

function describe(tally: Tally): string {
  const statuses = [...tally.byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status}×${count}`)
    .join(' ')
  return `${tally.sent} sent: ${tally.serverErrors} 5xx, ${tally.offShape} 4xx off-shape, ${tally.badSuccess} 2xx off-schema (${statuses})`
}

async function startUpstreamStub(): Promise<{ server: Server; url: string }> {
  const server = createHttpServer((_request, response) => {
    response.setHeader('content-type', 'application/json')
    response.end('{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('stub has no port')
  return { server, url: `http://127.0.0.1:${address.port}` }
}

async function signUp(app: TestApp['app'], username: string): Promise<string> {
  const credentials = { username, password: 'password123' }
  const registered = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: credentials,
  })
  assert.equal(registered.statusCode, 201, registered.body)
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: credentials })
  assert.equal(login.statusCode, 200, login.body)
  return login.json().access_token as string
}

function memory() {
  collectGarbage()
  collectGarbage()
  const usage = process.memoryUsage()
  return { heapMb: usage.heapUsed / MB, rssMb: usage.rss / MB }
}

/** Runs `work` over `count` indexes, `concurrency` at a time. */
async function pool(count: number, concurrency: number, work: (index: number) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++)
    }),
  )
}

const isPolluted = () =>
  ['polluted', 'is_admin'].some((key) => key in Object.prototype || key in ({} as object))

test('10,000 malformed requests by inject and 1,000 over HTTP: no 5xx, errors in shape, 2xx on schema, bounded heap', async (t) => {
  const stub = await startUpstreamStub()
  t.after(() => new Promise<void>((resolve) => stub.server.close(() => resolve())))
  const built = await buildTestApp(t, {
    // Big enough that the 10 MB strings reach the JSON parser and the validator instead of
    // stopping at 413 (the raw phase sends 17 MB to see the 413).
    BODY_LIMIT_BYTES: String(16 * MB),
    // Malformed requests, not guessing: the limits would answer 429 before validation runs.
    RATE_LIMIT_PER_MINUTE: '100000000',
    RATE_LIMIT_USER_PER_MINUTE: '100000000',
    // Empty would mean the default (login 10, register 20 a minute): raised instead.
    RATE_LIMIT_ROUTES: 'POST /api/auth/login=100000000,POST /api/auth/register=100000000',
    BCRYPT_COST: '4',
    // Upstreams that answer, so /api/aggregate* answers 200 rather than a documented 502/504.
    AGGREGATE_UPSTREAMS: `one=${stub.url}/one,two=${stub.url}/two`,
    AGGREGATE_DEADLINE_MS: '5000',
  })
  const { app } = built
  const { operations } = await loadOperations(async (url) => {
    const response = await app.inject(url)
    return { status: response.statusCode, json: () => response.json() }
  })
  const token = await signUp(app, 'alice')
  const authorization = `Bearer ${token}`
  const item = await app.inject({
    method: 'POST',
    url: '/api/items',
    headers: { authorization },
    payload: { name: 'Lamp', price: 10, stock: 1_000_000 },
  })
  const order = await app.inject({
    method: 'POST',
    url: '/api/orders',
    headers: { authorization },
    payload: { item_id: item.json().id, quantity: 1 },
  })
  const task = await app.inject({
    method: 'POST',
    url: '/api/tasks/number-sum',
    headers: { authorization },
    payload: { numbers: [1, 2] },
  })
  const context: FuzzContext = {
    token,
    itemId: item.json().id,
    orderId: order.json().id,
    taskId: task.json().task_id,
  }
  // Event streams never end; WebSocket routes are not in the document at all.
  const targets = operations.filter((operation) => !operation.isEventStream)
  const documented = new Map(targets.map((operation) => [nameOf(operation), operation]))
  const pairs = targets.flatMap((operation) =>
    mutatorsFor(operation, context).map(([kind, make]) => ({ kind, make })),
  )
  t.diagnostic(
    `seed ${SEED}; ${targets.length} operations (${operations.length - targets.length} event streams skipped), ${pairs.length} operation × mutation pairs`,
  )
  const rng = random(SEED)
  const checker = createAnswerChecker()
  const injected = newTally()
  let pollutedAfter = ''
  let memoryAtHalf = { heapMb: 0, rssMb: 0 }
  const startedMs = Date.now()

  await pool(INJECTED, 4, async (index) => {
    if (index === INJECTED / 2) memoryAtHalf = memory()
    const pair = pairs[index % pairs.length] as (typeof pairs)[number]
    const request = pair.make(rng)
    request.kind = pair.kind
    const response = await app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.headers,
      ...(request.payload === undefined ? {} : { payload: request.payload }),
    })
    record(
      injected,
      checker,
      request,
      documented,
      response.statusCode,
      response.headers['content-type'] as string | undefined,
      response.body,
    )
    if (!pollutedAfter && isPolluted()) pollutedAfter = `${request.kind} ${request.url}`
  })
  const memoryAtEnd = memory()
  const injectMs = Date.now() - startedMs
  const heapGrowthMb = memoryAtEnd.heapMb - memoryAtHalf.heapMb
  const rssGrowthMb = memoryAtEnd.rssMb - memoryAtHalf.rssMb
  t.diagnostic(`inject: ${describe(injected)} in ${(injectMs / 1000).toFixed(1)} s`)
  t.diagnostic(`by kind: ${[...injected.byKind].map(([k, n]) => `${k} ${n}`).join(', ')}`)
  for (const sample of injected.samples) t.diagnostic(`  ${sample}`)

  // Over real HTTP: the generated requests written as bytes, then protocol-level breakage.
  const overHttp = newTally()
  const { port } = new URL(built.baseUrl)
  await pool(OVER_HTTP, 8, async () => {
    const pair = rng.pick(pairs)
    const request = pair.make(rng)
    request.kind = pair.kind
    const answer = await sendRaw(Number(port), serialise(request), request.method === 'HEAD')
    recordRaw(overHttp, checker, request, documented, answer)
  })
  const protocolCases = protocolBreakage(context.itemId)
  await pool(RAW_PROTOCOL, 8, async (index) => {
    const broken = protocolCases[index % protocolCases.length] as ProtocolCase
    // The method and target as the request line gives them, to find the documented route.
    const [method = 'RAW', target = '/'] =
      broken.bytes.subarray(0, 200).toString('latin1').split(/\r?\n/)[0]?.split(' ') ?? []
    // An absolute-form target (GET http://host/path) is served as its path.
    const path = target.replace(/^https?:\/\/[^/]*/i, '')
    const request: Case = { kind: `raw: ${broken.name}`, method, url: path, headers: {} }
    const answer = await sendRaw(Number(port), broken.bytes, method === 'HEAD', broken.halfClose)
    if (broken.isUpgrade && answer.status === 101) {
      // @fastify/websocket completes the handshake on any route, then closes a socket whose
      // route has no WebSocket handler: the answer is a close frame (opcode 8).
      const isClosed = (answer.body.charCodeAt(0) & 0x0f) === 0x8
      tally101(overHttp, request, isClosed)
      return
    }
    recordRaw(overHttp, checker, request, documented, answer, broken.mayCloseSilently)
  })
  t.diagnostic(`http: ${describe(overHttp)}`)
  for (const sample of overHttp.samples) t.diagnostic(`  ${sample}`)

  // Subtests, so both figures are recorded even when the first fails.
  await t.test('answers', (st) =>
    expectFigure(st, {
      item: 7,
      name: `malformed requests: ${INJECTED.toLocaleString('en')} by inject + ${(OVER_HTTP + RAW_PROTOCOL).toLocaleString('en')} over HTTP (raw sockets)`,
      measured: `${injected.serverErrors + overHttp.serverErrors} 5xx, ${injected.offShape + overHttp.offShape} 4xx off-shape, ${injected.badSuccess + overHttp.badSuccess} 2xx off-schema; prototype ${pollutedAfter ? `polluted by ${pollutedAfter}` : 'clean'}`,
      pass: '0 5xx, 0 off-shape, 0 off-schema, prototype clean',
      ok:
        injected.sent === INJECTED &&
        overHttp.sent === OVER_HTTP + RAW_PROTOCOL &&
        injected.serverErrors + overHttp.serverErrors === 0 &&
        injected.offShape + overHttp.offShape === 0 &&
        injected.badSuccess + overHttp.badSuccess === 0 &&
        !pollutedAfter,
    }),
  )
  await t.test('memory', (st) =>
    expectFigure(st, {
      item: 7,
      name: 'memory growth over the second half of the inject run (heap after GC; RSS beside it)',
      measured: `heap ${signed(heapGrowthMb)} MB (${memoryAtHalf.heapMb.toFixed(1)} → ${memoryAtEnd.heapMb.toFixed(1)}), RSS ${signed(rssGrowthMb)} MB`,
      pass: `heap after GC < ${HEAP_GROWTH_LIMIT_MB} MB`,
      ok: heapGrowthMb < HEAP_GROWTH_LIMIT_MB,
    }),
  )
})

const signed = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(1)}`

function tally101(tally: Tally, request: Case, isClosed: boolean): void {
  tally.sent++
  tally.byStatus.set(101, (tally.byStatus.get(101) ?? 0) + 1)
  tally.byKind.set(request.kind, (tally.byKind.get(request.kind) ?? 0) + 1)
  if (isClosed) return
  tally.offShape++
  noteSample(tally, `${request.kind}: 101 without a close frame`)
}

function recordRaw(
  tally: Tally,
  checker: ReturnType<typeof createAnswerChecker>,
  request: Case,
  documented: Map<string, Operation>,
  answer: RawAnswer,
  mayCloseSilently = false,
): void {
  if (answer.status !== undefined && Number.isFinite(answer.status)) {
    record(tally, checker, request, documented, answer.status, answer.contentType, answer.body)
    return
  }
  tally.sent++
  tally.byKind.set(request.kind, (tally.byKind.get(request.kind) ?? 0) + 1)
  const key = answer.outcome === 'timeout' ? -2 : -1
  tally.byStatus.set(key, (tally.byStatus.get(key) ?? 0) + 1)
  if (mayCloseSilently && answer.outcome === 'closed') return
  // A connection closed without an answer, or no answer in 15 s: the client learns nothing.
  tally.offShape++
  noteSample(tally, `${request.kind}: ${request.url.slice(0, 80)} → ${answer.outcome}, no answer`)
}
