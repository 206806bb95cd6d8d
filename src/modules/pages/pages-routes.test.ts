import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { buildTestApp, type TestApp } from '../../../test/helpers/app.ts'
import { createItemsRepository } from '../items/items-repository.ts'

const HTML = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }
const EVIL = `<script>alert("x")</script> & 'quoted'`

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

async function appWithItems(t: Parameters<typeof buildTestApp>[0], count: number) {
  const built = await buildTestApp(t, NO_SHEDDING)
  const items = createItemsRepository({ db: built.container.db.db, ids: built.container.ids })
  await items.insertMany(
    Array.from({ length: count }, (_, index) => ({
      name: `Item ${String(index + 1).padStart(3, '0')}`,
      price: 10 + index / 4,
      description: `About item ${index + 1}`,
      stock: index % 3,
    })),
    null,
  )
  return { ...built, items }
}

async function page(app: TestApp, path: string, headers: Record<string, string> = HTML) {
  const response = await fetch(`${app.baseUrl}${path}`, { headers })
  return { response, body: await response.text() }
}

test('GET / lists the newest items with name, price, stock and links, a page at a time', async (t) => {
  const app = await appWithItems(t, 45)
  const first = await page(app, '/')
  assert.equal(first.response.status, 200)
  assert.equal(first.response.headers.get('content-type'), 'text/html; charset=utf-8')
  assert.match(first.body, /45 items · page 1 of 3/)
  assert.equal(first.body.match(/<tr data-item-id=/g)?.length, 20)
  assert.match(first.body, /<a href="\/items\/\d+">Item 045<\/a>/)
  assert.match(first.body, /<td class="number price">21\.00<\/td>/)
  assert.match(first.body, /<span class="out">out of stock<\/span>/)
  assert.match(first.body, /<a rel="next" href="\/\?page=2">/)
  assert.doesNotMatch(first.body, /rel="prev"/)
  assert.match(first.body, /<a href="\/docs">/)
  assert.match(first.body, /<link rel="stylesheet" href="\/static\/app.css">/)

  const last = await page(app, '/?page=3')
  assert.equal(last.body.match(/<tr data-item-id=/g)?.length, 5)
  assert.match(last.body, /<a rel="prev" href="\/\?page=2">/)
  assert.doesNotMatch(last.body, /rel="next"/)
  assert.match(last.body, />Item 001</)

  const beyond = await page(app, '/?page=9')
  assert.equal(beyond.response.status, 200)
  assert.match(beyond.body, /No items on this page/)
  assert.match(beyond.body, /<a rel="prev" href="\/\?page=3">/)
})

test('a page number that is not one is answered 400 with an HTML page', async (t) => {
  const app = await appWithItems(t, 1)
  for (const bad of ['0', 'abc', '-1', '1.5', '99999999']) {
    const { response, body } = await page(app, `/?page=${bad}`)
    assert.equal(response.status, 400, bad)
    assert.match(body, /400 · Bad request/)
  }
})

test('every value is HTML-escaped on the list and the item page', async (t) => {
  const app = await appWithItems(t, 0)
  const item = await app.items.create(
    { name: EVIL, price: 5, description: `<img src=x onerror=alert(1)>`, stock: 1 },
    null,
  )
  const escapedName = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;'
  for (const path of ['/', `/items/${item.id}`]) {
    const { body } = await page(app, path)
    assert.ok(body.includes(escapedName), `${path} shows the escaped name`)
    assert.ok(!body.includes('<script>alert'), `${path} has no live script`)
    assert.ok(!body.includes('<img src=x'), `${path} has no live image tag`)
  }
})

test('GET /items/{id} shows the item and its price, with a hidden order form for signed-in users', async (t) => {
  const app = await appWithItems(t, 0)
  const item = await app.items.create(
    { name: 'Desk lamp', price: 19.5, description: 'Warm light', stock: 4 },
    null,
  )
  const { response, body } = await page(app, `/items/${item.id}`)
  assert.equal(response.status, 200)
  assert.match(body, /<h1>Desk lamp<\/h1>/)
  assert.match(body, /<p class="price" id="price">19\.50<\/p>/)
  assert.match(body, /4 in stock/)
  assert.match(body, /Warm light/)
  assert.match(
    body,
    new RegExp(`<section id="order" class="order" data-item-id="${item.id}" hidden>`),
  )
  assert.match(body, /<input name="quantity" type="number" min="1" max="4"/)
  const csp = response.headers.get('content-security-policy') ?? ''
  assert.match(csp, /script-src 'self'/)
  assert.doesNotMatch(csp, /unsafe-inline/)
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
})

test('an unknown or deleted item, and an id that is not one, get the HTML 404 page', async (t) => {
  const app = await appWithItems(t, 0)
  const item = await app.items.create({ name: 'Gone', price: 1, description: null, stock: 1 }, null)
  await app.items.softDelete(item.id, null)
  for (const path of [`/items/${item.id}`, '/items/123456789', '/items/abc', '/items/1%3Cb%3E']) {
    const { response, body } = await page(app, path)
    assert.equal(response.status, 404, path)
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.match(body, /404 · Page not found/)
  }
})

test('an unknown page is the HTML 404 for browsers and the JSON 404 for API clients', async (t) => {
  const app = await appWithItems(t, 0)
  const html = await page(app, '/no/such/<page>')
  assert.equal(html.response.status, 404)
  assert.match(html.body, /There is no page at \/no\/such\/%3Cpage%3E\./)
  assert.match(html.body, /<a href="\/">Back to the items<\/a>/)

  const json = await page(app, '/no/such/page?x=1', {})
  assert.equal(json.response.status, 404)
  assert.deepEqual(JSON.parse(json.body), {
    detail: 'Not Found: GET /no/such/page',
    code: 'NOT_FOUND',
  })
  const api = await page(app, '/api/nothing')
  assert.equal(api.response.status, 404)
  assert.equal(JSON.parse(api.body).code, 'NOT_FOUND', 'the API answers JSON even to a browser')
})

test('static assets are served under /static with types and caching; nothing outside it', async (t) => {
  const app = await appWithItems(t, 0)
  const css = await page(app, '/static/app.css', {})
  assert.equal(css.response.status, 200)
  assert.match(css.response.headers.get('content-type') ?? '', /^text\/css/)
  assert.match(css.response.headers.get('cache-control') ?? '', /max-age=3600/)
  const js = await page(app, '/static/app.js', {})
  assert.equal(js.response.status, 200)
  assert.match(js.response.headers.get('content-type') ?? '', /javascript/)
  assert.match(js.body, /sessionStorage/)
  assert.equal((await page(app, '/static/missing.js', {})).response.status, 404)
  assert.equal((await page(app, '/static/README.md', {})).response.status, 404)

  // A raw request, since fetch would normalise the dots away.
  const port = new URL(app.baseUrl).port
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.end('GET /static/../package.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    })
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString()
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
  assert.match(reply, /^HTTP\/1\.1 (400|403|404) /)
  assert.doesNotMatch(reply, /"name": "servekit"/)
})
