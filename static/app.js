// servekit pages: sign-in, and ordering with live status.
//
// The bearer token lives in sessionStorage: it is sent only when this script adds it (a cookie
// would be sent with every request, so the API would need CSRF defences), it is per tab and gone
// when the tab closes. Scripts can read it, which is why the pages escape every value and their
// Content-Security-Policy allows no inline or foreign script.
//
// Order status is followed over server-sent events read with fetch, not EventSource:
// EventSource cannot send an Authorization header, and putting the token in the URL would write
// it into access logs, proxies and the browser history.

const TOKEN_KEY = 'servekit.token'
const USERNAME_KEY = 'servekit.username'
const FINAL_STATUSES = new Set(['completed', 'rejected', 'failed'])

const byId = (id) => document.getElementById(id)
const token = () => sessionStorage.getItem(TOKEN_KEY)

function showAccount() {
  const signedIn = token() !== null
  const loginForm = byId('login-form')
  const signedInBox = byId('signed-in')
  if (loginForm) loginForm.hidden = signedIn
  if (signedInBox) signedInBox.hidden = !signedIn
  const name = byId('signed-in-name')
  if (name) name.textContent = sessionStorage.getItem(USERNAME_KEY) ?? ''
  const order = byId('order')
  if (order) order.hidden = !signedIn
  const hint = byId('order-hint')
  if (hint) hint.hidden = signedIn
}

function signOutLocally() {
  sessionStorage.removeItem(TOKEN_KEY)
  sessionStorage.removeItem(USERNAME_KEY)
  showAccount()
}

async function readDetail(response) {
  try {
    const body = await response.json()
    if (typeof body.detail === 'string') return body.detail
    if (Array.isArray(body.detail)) return body.detail.map((problem) => problem.msg).join('; ')
  } catch {
    // not JSON
  }
  return `HTTP ${response.status}`
}

async function signIn(event) {
  event.preventDefault()
  const form = event.currentTarget
  const error = byId('login-error')
  error.textContent = ''
  const username = form.elements.username.value
  const response = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: form.elements.password.value }),
  })
  if (!response.ok) {
    error.textContent = await readDetail(response)
    return
  }
  const body = await response.json()
  sessionStorage.setItem(TOKEN_KEY, body.access_token)
  sessionStorage.setItem(USERNAME_KEY, username)
  form.reset()
  showAccount()
}

async function signOut() {
  const current = token()
  signOutLocally()
  if (current) {
    await fetch('/api/auth/logout', {
      method: 'POST',
      headers: { authorization: `Bearer ${current}` },
    }).catch(() => undefined)
  }
}

function setStatus(status, detail) {
  const output = byId('order-status')
  output.dataset.status = status
  output.textContent = detail ? `${status}: ${detail}` : status
}

async function placeOrder(event) {
  event.preventDefault()
  const form = event.currentTarget
  const itemId = byId('order').dataset.itemId
  const quantity = Number(form.elements.quantity.value)
  setStatus('sending')
  const response = await fetch('/api/orders', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
    body: JSON.stringify({ item_id: itemId, quantity }),
  })
  if (response.status === 401) {
    signOutLocally()
    setStatus('failed', 'please sign in again')
    return
  }
  if (response.status === 404) {
    setStatus('failed', 'ordering is not available yet')
    return
  }
  if (!response.ok) {
    setStatus('failed', await readDetail(response))
    return
  }
  const order = await response.json()
  setStatus(order.status ?? 'pending')
  await followOrder(order.id)
}

/** Reads the order's event stream until a final status; reconnects with Last-Event-ID. */
async function followOrder(orderId) {
  let lastEventId
  for (let attempt = 0; attempt < 6; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
    const headers = { accept: 'text/event-stream', authorization: `Bearer ${token()}` }
    if (lastEventId) headers['last-event-id'] = lastEventId
    let response
    try {
      response = await fetch(`/api/orders/${encodeURIComponent(orderId)}/events`, { headers })
    } catch {
      continue
    }
    if (!response.ok || !response.body) {
      if (response.status >= 400 && response.status < 500) {
        setStatus('failed', await readDetail(response))
        return
      }
      continue
    }
    const isFinal = await readEvents(response.body, (message) => {
      if (message.id) lastEventId = message.id
      let data
      try {
        data = JSON.parse(message.data)
      } catch {
        return false
      }
      if (typeof data.status !== 'string') return false
      setStatus(data.status, data.reason)
      return FINAL_STATUSES.has(data.status)
    })
    if (isFinal) return
  }
}

/** Parses a text/event-stream; `onMessage` returns true to stop. Resolves true if stopped. */
async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return false
      buffer += value
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/)
      buffer = blocks.pop() ?? ''
      for (const block of blocks) {
        const message = { id: undefined, event: 'message', data: [] }
        for (const line of block.split(/\r\n|\n|\r/)) {
          if (line === '' || line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'data') message.data.push(text)
          else if (field === 'id') message.id = text
          else if (field === 'event') message.event = text
        }
        if (message.data.length === 0) continue
        if (onMessage({ ...message, data: message.data.join('\n') })) return true
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}

document.addEventListener('DOMContentLoaded', () => {
  showAccount()
  byId('login-form')?.addEventListener('submit', (event) => void signIn(event))
  byId('logout')?.addEventListener('click', () => void signOut())
  byId('order-form')?.addEventListener('submit', (event) => void placeOrder(event))
})
