/**
 * Item 9: authorisation, from the OpenAPI document the app serves. Every operation with a path
 * parameter is tried on Alice's resources by Bob (another signed-in user) and by an anonymous
 * caller; Alice herself is tried first, so a sweep against ids that do not exist cannot pass by
 * accident. Then every JSON write is sent with the fields a client must not set (ids, owners,
 * timestamps, order status and stock, roles), each route's own fields left out, and what was
 * stored is read back through the API and from the database.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { expectFigure } from './figures.ts'
import {
  exampleOf,
  fillPath,
  loadOperations,
  nameOf,
  type Operation,
  propertiesOf,
} from './openapi-helpers.ts'

const PASSWORD = 'password123'
const RUN = Math.random().toString(36).slice(2, 8)
/** Resources of Alice's per kind the sweep is tried on. */
const RESOURCES_PER_KIND = 3
/** The name Bob's and the anonymous caller's updates try to write. */
const INTRUDER = `intruder-${RUN}`

interface Answer {
  status: number
  body: string
}

interface Caller {
  name: 'alice' | 'bob' | 'anonymous'
  headers: Record<string, string>
}

async function signUp(app: TestApp['app'], username: string) {
  const credentials = { username, password: PASSWORD }
  const registered = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: credentials,
  })
  assert.equal(registered.statusCode, 201, registered.body)
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: credentials })
  assert.equal(login.statusCode, 200, login.body)
  return {
    id: registered.json().id as string,
    username,
    headers: { authorization: `Bearer ${login.json().access_token}` },
  }
}

/**
 * Sends one request over real HTTP (event streams never end under inject): the status and at
 * most the first 64 KB or 1 s of the body, so an event stream that wrongly opens still shows
 * what it would leak.
 */
async function call(
  baseUrl: string,
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), 10_000)
  try {
    const response = await fetch(`${baseUrl}${url}`, {
      method,
      headers: {
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: controller.signal,
    })
    const reader = response.body?.getReader()
    let text = ''
    if (reader) {
      const decoder = new TextDecoder()
      const deadline = Date.now() + 1000
      while (text.length < 65_536 && Date.now() < deadline) {
        const chunk = await Promise.race([
          reader.read(),
          new Promise<undefined>((resolve) => setTimeout(resolve, 1000, undefined)),
        ])
        if (!chunk || chunk.done) break
        text += decoder.decode(chunk.value, { stream: true })
      }
      await reader.cancel().catch(() => undefined)
    }
    return { status: response.status, body: text }
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}

/** Which of Alice's resources a path parameter names, by the path it is on. */
function kindOf(operation: Operation): 'item' | 'order' | 'task' | 'user' | undefined {
  if (operation.path.startsWith('/api/items/')) return 'item'
  if (operation.path.startsWith('/api/orders/')) return 'order'
  if (operation.path.startsWith('/api/tasks/')) return 'task'
  if (operation.path.startsWith('/internal/users/')) return 'user'
  return undefined
}

test('every operation with an id, tried on Alice’s resources by Bob and anonymously: 403/404 and 401, nothing leaks', async (t) => {
  const built = await buildTestApp(t, {
    RATE_LIMIT_PER_MINUTE: '100000000',
    RATE_LIMIT_USER_PER_MINUTE: '100000000',
    // Empty would mean the default (login 10, register 20 a minute): raised instead.
    RATE_LIMIT_ROUTES: 'POST /api/auth/login=100000000,POST /api/auth/register=100000000',
    BCRYPT_COST: '4',
  })
  const { app, baseUrl } = built
  const { operations } = await loadOperations(async (url) => {
    const response = await app.inject(url)
    return { status: response.statusCode, json: () => response.json() }
  })
  const alice = await signUp(app, `alice${RUN}`)
  const bob = await signUp(app, `bob${RUN}`)

  // Alice's resources, each carrying text that must never reach Bob or an anonymous caller.
  const secrets = new Set<string>([alice.id, alice.username])
  const ids: Record<'item' | 'order' | 'task' | 'user', string[]> = {
    item: [],
    order: [],
    task: [],
    user: [alice.id],
  }
  for (let index = 0; index < RESOURCES_PER_KIND; index++) {
    const marker = `${RUN}${index}`
    const item = await app.inject({
      method: 'POST',
      url: '/api/items',
      headers: alice.headers,
      payload: {
        name: `alice-secret-name-${marker}`,
        description: `alice-secret-description-${marker}`,
        price: 13.37,
        stock: 100,
      },
    })
    assert.equal(item.statusCode, 201, item.body)
    ids.item.push(item.json().id)
    secrets.add(`alice-secret-name-${marker}`).add(`alice-secret-description-${marker}`)
    const order = await app.inject({
      method: 'POST',
      url: '/api/orders',
      headers: alice.headers,
      payload: { item_id: item.json().id, quantity: 3 },
    })
    assert.equal(order.statusCode, 202, order.body)
    ids.order.push(order.json().id)
    const numbers: [number, number] = [7_000_000 + index, 1_234_567]
    const task = await app.inject({
      method: 'POST',
      url: '/api/tasks/number-sum',
      headers: alice.headers,
      payload: { numbers },
    })
    assert.equal(task.statusCode, 202, task.body)
    ids.task.push(task.json().task_id)
    secrets.add(task.json().task_id).add(String(numbers[0] + numbers[1]))
  }

  const withIds = operations.filter((operation) => operation.pathParams.length > 0)
  const secured = withIds.filter((operation) => operation.isSecured)
  const notBearer = withIds.filter((operation) => !operation.isSecured)
  t.diagnostic(
    `${withIds.length} operations with an id: ${secured.map(nameOf).join(', ')} (bearer); ${notBearer.map(nameOf).join(', ')} (no bearer)`,
  )
  assert.ok(secured.length >= 5, 'the document lists the bearer routes with ids')

  const anonymous: Caller = { name: 'anonymous', headers: {} }
  const tries = { owner: 0, ownerOk: 0, bob: 0, bobRefused: 0, anon: 0, anonRefused: 0 }
  const leaks: string[] = []
  const wrong: string[] = []
  const intruded: string[] = []
  const requestFor = (operation: Operation, id: string) => ({
    url: fillPath(
      operation.path,
      Object.fromEntries(operation.pathParams.map((p) => [p.name, id])),
    ),
    body: operation.body ? exampleOf(operation.body) : undefined,
  })
  const leaked = (answer: Answer) => [...secrets].filter((secret) => answer.body.includes(secret))

  // Deletes go last, so the other operations still find Alice's items.
  const ordered = [...secured].sort(
    (a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'),
  )
  for (const operation of ordered) {
    const kind = kindOf(operation)
    assert.ok(kind, `no resource of Alice's for ${nameOf(operation)}`)
    for (const id of ids[kind]) {
      const { url, body } = requestFor(operation, id)
      for (const caller of [{ name: 'bob', headers: bob.headers }, anonymous] as Caller[]) {
        // Bob's changes carry a mark, looked for in the database afterwards.
        const theirs =
          body && typeof body === 'object' && 'name' in body ? { ...body, name: INTRUDER } : body
        const answer = await call(baseUrl, operation.method, url, caller.headers, theirs)
        // A refused write changed nothing: no item took the intruder's name (looked up before
        // Alice's own request, which would overwrite it). Every delete of Alice's was hers: her
        // own DELETE below answers 2xx only while the row is still there.
        if (operation.method !== 'GET') {
          const renamed = await built.container.db.db
            .selectFrom('items')
            .select('id')
            .where('name', '=', INTRUDER)
            .execute()
          intruded.push(...renamed.map((row) => `${caller.name} ${operation.method} ${row.id}`))
        }
        const seen = leaked(answer)
        if (seen.length > 0)
          leaks.push(`${caller.name} ${operation.method} ${url}: ${seen.join(', ')}`)
        if (caller.name === 'bob') {
          tries.bob++
          if (answer.status === 403 || answer.status === 404) tries.bobRefused++
          else
            wrong.push(
              `bob ${operation.method} ${url} → ${answer.status} ${answer.body.slice(0, 100)}`,
            )
        } else {
          tries.anon++
          if (answer.status === 401) tries.anonRefused++
          else
            wrong.push(
              `anonymous ${operation.method} ${url} → ${answer.status} ${answer.body.slice(0, 100)}`,
            )
        }
      }
      // The owner, after the others: her answer proves the id was real and untouched.
      const owned = await call(baseUrl, operation.method, url, alice.headers, body)
      tries.owner++
      if (owned.status >= 200 && owned.status < 300) tries.ownerOk++
      else
        wrong.push(`alice ${operation.method} ${url} → ${owned.status} ${owned.body.slice(0, 100)}`)
    }
  }

  // Routes without a bearer requirement: the public item read, and the HMAC-signed internal
  // read, which no bearer token (nor none) may open.
  const publicReads: string[] = []
  for (const operation of notBearer) {
    const kind = kindOf(operation)
    assert.ok(kind, `no resource of Alice's for ${nameOf(operation)}`)
    const { url } = requestFor(operation, ids[kind][0] as string)
    if (operation.path.startsWith('/internal/')) {
      for (const caller of [{ name: 'bob', headers: bob.headers }, anonymous] as Caller[]) {
        const answer = await call(baseUrl, operation.method, url, caller.headers)
        if (caller.name === 'bob') tries.bob++
        else tries.anon++
        if (answer.status === 401) {
          if (caller.name === 'bob') tries.bobRefused++
          else tries.anonRefused++
        } else wrong.push(`${caller.name} ${operation.method} ${url} → ${answer.status}`)
        const seen = leaked(answer)
        if (seen.length > 0)
          leaks.push(`${caller.name} ${operation.method} ${url}: ${seen.join(', ')}`)
      }
    } else publicReads.push(nameOf(operation))
  }
  for (const line of wrong.slice(0, 12)) t.diagnostic(`  ${line}`)
  for (const line of leaks.slice(0, 12)) t.diagnostic(`  leak: ${line}`)

  expectFigure(t, {
    item: 9,
    name: `id routes from the OpenAPI document (${secured.length} bearer + ${notBearer.length - publicReads.length} signed; ${publicReads.join(', ')} public by design), Alice's resources tried by Bob and anonymously`,
    measured: `Bob ${tries.bobRefused}/${tries.bob} 403/404 (signed route: 401), anonymous ${tries.anonRefused}/${tries.anon} 401, ${leaks.length} leaks, ${intruded.length} intruder writes stored; owner ${tries.ownerOk}/${tries.owner} 2xx`,
    pass: '100% refused, 0 leaks, 0 stored (owner control: 100% 2xx)',
    ok:
      tries.bob > 0 &&
      tries.bobRefused === tries.bob &&
      tries.anonRefused === tries.anon &&
      leaks.length === 0 &&
      intruded.length === 0 &&
      tries.ownerOk === tries.owner,
  })
})

/** Values a client must not be able to set; each route's own body fields are left out. */
const FORBIDDEN: Record<string, unknown> = {
  id: '4242424242424242',
  creator_id: '4242424242424243',
  owner_id: '4242424242424244',
  user_id: '4242424242424245',
  updater_id: '4242424242424246',
  created_at: '2001-02-03T04:05:06.000Z',
  updated_at: '2001-02-03T04:05:06.000Z',
  deleted_at: '2001-02-03T04:05:06.000Z',
  role: 'admin',
  is_admin: true,
  password_hash: '$2b$04$abcdefghijklmnopqrstuuJ0TcNVHp3uuG/3xVzQ7LTpNJ1bEjl9G',
  stock: 424_242,
  price: 0.01,
  status: 'rejected',
  reason: 'item_not_found',
  task_id: 'u4242424242424242-chosen',
  state: 'failed',
  result: 424_242,
  idempotency_key: 'chosen-key',
}

test('every write with fields a client must not set: none is stored', async (t) => {
  const built = await buildTestApp(t, {
    RATE_LIMIT_PER_MINUTE: '100000000',
    RATE_LIMIT_USER_PER_MINUTE: '100000000',
    // Empty would mean the default (login 10, register 20 a minute): raised instead.
    RATE_LIMIT_ROUTES: 'POST /api/auth/login=100000000,POST /api/auth/register=100000000',
    BCRYPT_COST: '4',
  })
  const { app } = built
  const db = built.container.db.db
  const { operations } = await loadOperations(async (url) => {
    const response = await app.inject(url)
    return { status: response.statusCode, json: () => response.json() }
  })
  const alice = await signUp(app, `alice${RUN}`)
  const item = await app.inject({
    method: 'POST',
    url: '/api/items',
    headers: alice.headers,
    payload: { name: 'Kettle', price: 20, stock: 50 },
  })
  const itemId = item.json().id as string

  /**
   * For each write route: the body to send, and how to read back what it stored (the API's
   * answer merged with the database row, so a column the API hides is seen too).
   */
  const writes: Record<
    string,
    { body: Record<string, unknown>; stored: (answer: Answer) => Promise<Record<string, unknown>> }
  > = {
    'POST /api/auth/register': {
      body: { username: `mass${RUN}`, password: PASSWORD },
      stored: async () => {
        const row = await db
          .selectFrom('users')
          .selectAll()
          .where('username', '=', `mass${RUN}`)
          .executeTakeFirstOrThrow()
        const login = await app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: `mass${RUN}`, password: PASSWORD },
        })
        assert.equal(login.statusCode, 200, 'the new user logs in with the password it sent')
        const me = await app.inject({
          url: '/api/users/me',
          headers: { authorization: `Bearer ${login.json().access_token}` },
        })
        return { ...row, ...me.json() }
      },
    },
    'POST /api/items': {
      body: { name: 'Mass', price: 5, stock: 7 },
      stored: async (answer) => {
        const id = JSON.parse(answer.body).id as string
        const row = await db
          .selectFrom('items')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
        const read = await app.inject(`/api/items/${id}`)
        return { ...row, ...read.json() }
      },
    },
    'PATCH /api/items/{id}': {
      body: { name: 'Kettle 2' },
      stored: async () => {
        const row = await db
          .selectFrom('items')
          .selectAll()
          .where('id', '=', itemId)
          .executeTakeFirstOrThrow()
        const read = await app.inject(`/api/items/${itemId}`)
        return { ...row, ...read.json() }
      },
    },
    'POST /api/orders': {
      body: { item_id: itemId, quantity: 2 },
      stored: async (answer) => {
        const id = JSON.parse(answer.body).id as string
        const settled = await waitFor(async () => {
          const read = await app.inject({ url: `/api/orders/${id}`, headers: alice.headers })
          const order = read.json() as Record<string, unknown>
          return order.status !== 'pending' ? order : undefined
        })
        const row = await db
          .selectFrom('orders')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
        const stock = (await app.inject(`/api/items/${itemId}`)).json().stock as number
        return { ...row, ...settled, stock }
      },
    },
    'POST /api/tasks/number-sum': {
      body: { numbers: [40, 2] },
      stored: async (answer) => taskStored(JSON.parse(answer.body).task_id as string),
    },
    'POST /api/tasks/workflow': {
      body: { kind: 'group', calls: [{ task: 'tasks.number-square', payload: 3 }] },
      stored: async (answer) => taskStored(JSON.parse(answer.body).task_id as string),
    },
  }
  async function taskStored(taskId: string) {
    const finished = await waitFor(async () => {
      const read = await app.inject({ url: `/api/tasks/${taskId}`, headers: alice.headers })
      const task = read.json() as Record<string, unknown>
      return read.statusCode === 200 && task.state === 'succeeded' ? task : undefined
    })
    return { ...finished, task_id: taskId }
  }

  const writeOperations = operations.filter(
    (operation) => operation.body && ['POST', 'PUT', 'PATCH'].includes(operation.method),
  )
  const covered = writeOperations.filter((operation) => writes[nameOf(operation)])
  // Writes that store nothing a client reads back: logins, the signed batch read, compute.
  const skipped = writeOperations.filter((operation) => !writes[nameOf(operation)]).map(nameOf)
  t.diagnostic(`writes: ${covered.map(nameOf).join(', ')}; storing nothing: ${skipped.join(', ')}`)

  let tried = 0
  const stored: string[] = []
  const refused: string[] = []
  const perRoute: string[] = []
  for (const operation of covered) {
    const write = writes[nameOf(operation)] as (typeof writes)[string]
    const own = new Set(Object.keys(propertiesOf(operation.body ?? {})))
    const extras = Object.fromEntries(Object.entries(FORBIDDEN).filter(([name]) => !own.has(name)))
    const url = fillPath(operation.path, { id: itemId })
    const answer = await app.inject({
      method: operation.method,
      url,
      headers: alice.headers,
      payload: { ...write.body, ...extras },
    })
    if (answer.statusCode >= 300) {
      // Refusing the request outright is fine too (nothing stored); record it.
      refused.push(`${nameOf(operation)} → ${answer.statusCode}`)
      tried += Object.keys(extras).length
      perRoute.push(`${nameOf(operation)} ${Object.keys(extras).length} (refused)`)
      continue
    }
    const record = await write.stored({ status: answer.statusCode, body: answer.body })
    const answered = answer.json() as Record<string, unknown>
    for (const [name, value] of Object.entries(extras)) {
      tried++
      if (isSame(record[name], value) || isSame(answered[name], value))
        stored.push(`${nameOf(operation)}: ${name}`)
    }
    perRoute.push(`${nameOf(operation)} ${Object.keys(extras).length}`)
  }
  t.diagnostic(`fields tried per route: ${perRoute.join(', ')}`)
  for (const line of [...stored, ...refused]) t.diagnostic(`  ${line}`)

  expectFigure(t, {
    item: 9,
    name: `mass assignment: ${covered.length} writes from the OpenAPI document, each with the forbidden fields it does not own (of ${Object.keys(FORBIDDEN).length}: ids, owners, timestamps, role, is_admin, status, stock…)`,
    measured: `${tried} field × write tries, ${stored.length} stored${stored.length ? ` (${stored.slice(0, 4).join('; ')})` : ''}`,
    pass: '0 stored',
    ok: tried > 0 && covered.length >= 5 && stored.length === 0,
  })
})

function isSame(stored: unknown, injected: unknown): boolean {
  if (stored === undefined || stored === null) return false
  if (stored instanceof Date) return stored.toISOString() === injected
  return String(stored) === String(injected)
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`not settled within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
