import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { createItemsRepository } from '../../src/modules/items/items-repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { chromiumAvailability, openPage } from './chromium.ts'

const availability = chromiumAvailability()

// Load shedding off: a busy test machine (other suites, a browser) must not turn answers into 503s.
const NO_SHEDDING = { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }

/** The app with `count` items named "Item 001"… (price 10.00, 10.25, …) and one known item. */
async function seededApp(t: TestContext, count: number) {
  const app = await buildTestApp(t, { BCRYPT_COST: '4', ...NO_SHEDDING })
  const items = createItemsRepository({ db: app.container.db.db, ids: app.container.ids })
  await items.insertMany(
    Array.from({ length: count }, (_, index) => ({
      name: `Item ${String(index + 1).padStart(3, '0')}`,
      price: 10 + index / 4,
      description: null,
      stock: 5,
    })),
    null,
  )
  const lamp = await items.create(
    { name: 'Desk lamp <b>bright</b>', price: 19.5, description: 'Warm & dimmable', stock: 7 },
    null,
  )
  return { ...app, lamp }
}

async function register(baseUrl: string, username: string, password: string): Promise<void> {
  const response = await fetch(`${baseUrl}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  assert.equal(response.status, 201)
}

describe('the pages in headless Chromium', { ...availability, timeout: 120_000 }, () => {
  test('the list renders the seeded items and pages through them', async (t) => {
    const { baseUrl } = await seededApp(t, 25)
    const { page, errors, screenshot } = await openPage(t)
    await page.goto(`${baseUrl}/`)
    assert.equal(await page.title(), 'Items · servekit')
    const rows = page.locator('table.items tbody tr')
    assert.equal(await rows.count(), 20)
    assert.equal(await rows.first().locator('td.name').textContent(), 'Desk lamp <b>bright</b>')
    assert.equal(await rows.nth(1).locator('td.name').textContent(), 'Item 025')
    assert.equal(await rows.nth(1).locator('td.price').textContent(), '16.00')
    assert.equal(await page.locator('a[href="/docs"]').first().isVisible(), true)
    await screenshot('pages-item-list')

    await page.click('a[rel="next"]')
    await page.waitForURL(`${baseUrl}/?page=2`)
    assert.equal(await rows.count(), 6)
    assert.equal(await rows.last().locator('td.name').textContent(), 'Item 001')
    assert.deepEqual(errors, [])
  })

  test('the item page shows its price, and a real 404 page for unknown items', async (t) => {
    const { baseUrl, lamp } = await seededApp(t, 3)
    const { page, errors, screenshot } = await openPage(t)
    await page.goto(`${baseUrl}/`)
    await page.click(`a[href="/items/${lamp.id}"] >> nth=0`)
    await page.waitForURL(`${baseUrl}/items/${lamp.id}`)
    assert.equal(await page.locator('#price').textContent(), '19.50')
    assert.equal(await page.locator('h1').textContent(), 'Desk lamp <b>bright</b>')
    assert.equal(await page.locator('.description').textContent(), 'Warm & dimmable')
    assert.equal(await page.locator('#order').isVisible(), false, 'no order form signed out')
    assert.equal(await page.locator('#order-hint').isVisible(), true)
    await screenshot('pages-item')
    assert.deepEqual(errors, [])

    const missing = await page.goto(`${baseUrl}/items/123456789`)
    assert.equal(missing?.status(), 404)
    assert.equal(await page.locator('h1').textContent(), '404 · Page not found')
    await screenshot('pages-not-found')
  })

  test('signing in on the page shows the order form; signing out hides it', async (t) => {
    const { baseUrl, lamp } = await seededApp(t, 1)
    await register(baseUrl, 'dana', 'correct horse')
    const { page, errors, screenshot } = await openPage(t)
    await page.goto(`${baseUrl}/items/${lamp.id}`)

    await page.fill('#login-form input[name=username]', 'dana')
    await page.fill('#login-form input[name=password]', 'wrong password')
    await page.click('#login-form button[type=submit]')
    // Locators, not string predicates: the pages' CSP forbids eval, which those use.
    await page.locator('#login-error:not(:empty)').waitFor()
    assert.match((await page.locator('#login-error').textContent()) ?? '', /Incorrect/i)
    errors.length = 0 // the refused login logs its 401 to the console, as it should

    await page.fill('#login-form input[name=password]', 'correct horse')
    await page.click('#login-form button[type=submit]')
    await page.locator('#signed-in').waitFor({ state: 'visible' })
    assert.equal(await page.locator('#signed-in-name').textContent(), 'dana')
    assert.equal(await page.locator('#order').isVisible(), true)
    assert.equal(await page.locator('#login-form').isVisible(), false)
    const token = await page.evaluate("sessionStorage.getItem('servekit.token')")
    assert.match(String(token), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the token is kept in sessionStorage')
    await screenshot('pages-signed-in')

    await page.reload()
    assert.equal(await page.locator('#order').isVisible(), true, 'still signed in in this tab')
    await page.click('#logout')
    await page.locator('#login-form').waitFor({ state: 'visible' })
    assert.equal(await page.locator('#order').isVisible(), false)
    assert.equal(await page.evaluate("sessionStorage.getItem('servekit.token')"), null)
    assert.deepEqual(errors, [])
  })

  test('an order placed on the page shows its completed status without a reload', async (t) => {
    const { app, baseUrl, lamp } = await seededApp(t, 1)
    const missing = [
      ['POST', '/api/orders'],
      ['GET', '/api/orders/:id/events'],
    ].filter(
      ([method, url]) => !app.hasRoute({ method: method as 'GET' | 'POST', url: url as string }),
    )
    if (missing.length > 0) {
      t.skip(
        `${missing.map(([method, url]) => `${method} ${url}`).join(' and ')} not built yet (src/modules/orders)`,
      )
      return
    }
    await register(baseUrl, 'erin', 'correct horse')
    const { page, errors, screenshot } = await openPage(t)
    await page.goto(`${baseUrl}/items/${lamp.id}`)
    await page.fill('#login-form input[name=username]', 'erin')
    await page.fill('#login-form input[name=password]', 'correct horse')
    await page.click('#login-form button[type=submit]')
    await page.locator('#order').waitFor({ state: 'visible' })

    // A marker on the window: it survives only if the page is never reloaded.
    await page.evaluate('window.__servekitMarker = 42')
    await page.fill('#order-form input[name=quantity]', '2')
    await page.click('#order-form button[type=submit]')
    await page.locator('#order-status[data-status="completed"]').waitFor({ timeout: 15_000 })
    assert.equal(await page.locator('#order-status').textContent(), 'completed')
    assert.equal(await page.evaluate('window.__servekitMarker'), 42, 'no reload happened')
    await screenshot('pages-order-completed')
    assert.deepEqual(errors, [])
  })
})
