import { get as httpGet, type IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

/*
 * Chat clients for the realtime fault test: a WebSocket client and an SSE client of one chat
 * room that reconnect by themselves (to another server when theirs is gone) with the last id
 * they saw, and check every event as it arrives: ids strictly increasing, and the publisher's
 * numbered events each once, in order, none skipped.
 */

/** What the test publishes: chat events whose text is the event's number within its room. */
export const PUBLISHER_ID = 'publisher'

export interface ClientTally {
  readonly kind: 'ws' | 'sse'
  readonly room: string
  /** The number of the last publisher event received in order (-1: none yet). */
  readonly lastSeq: number
  /** The id of the last event received (any event of the room). */
  readonly lastId: string | undefined
  /** Publisher events received in order. */
  readonly received: number
  /** Publisher events skipped (a number arrived past the next one expected). */
  readonly missing: number
  /** Events received again (a number or id at or below the last one seen). */
  readonly duplicates: number
  /** Connections after the first. */
  readonly reconnects: number
  /** Whether the first connection is open and has seen its start (WebSocket: its own join). */
  readonly isReady: boolean
  stop(): void
}

interface ClientOptions {
  kind: 'ws' | 'sse'
  clientId: string
  room: string
  /** Base URLs (http://127.0.0.1:port) of every server; the first connection goes to `first`. */
  servers: readonly string[]
  first: number
}

/** Opens one chat client; it keeps itself connected until `stop()`. */
export function chatClient(options: ClientOptions): ClientTally {
  const { kind, clientId, room, servers } = options
  let lastSeq = -1
  let lastId: string | undefined
  let received = 0
  let missing = 0
  let duplicates = 0
  let connections = 0
  let isReady = false
  let isStopped = false
  let closeCurrent: (() => void) | undefined
  let next = options.first

  const onEvent = (id: string | undefined, data: string) => {
    if (id === undefined) return
    if (lastId !== undefined && compareIds(id, lastId) <= 0) {
      duplicates += 1
      return
    }
    lastId = id
    if (kind === 'ws' && !isReady && data.includes(`"client_id":"${clientId}"`)) isReady = true
    if (!data.includes(`"client_id":"${PUBLISHER_ID}"`)) return
    const seq = Number((JSON.parse(data) as { text: string }).text)
    if (seq <= lastSeq) duplicates += 1
    else {
      missing += seq - lastSeq - 1
      lastSeq = seq
      received += 1
    }
  }

  const reconnectLater = () => {
    closeCurrent = undefined
    if (isStopped) return
    // Another server each time: a dead one refuses at once, and the next try goes elsewhere.
    next = (next + 1) % servers.length
    setTimeout(connect, 100 + Math.random() * 400).unref()
  }

  const connect = () => {
    if (isStopped) return
    connections += 1
    const base = servers[next] as string
    if (kind === 'ws') {
      const query = new URLSearchParams({ room })
      if (lastId !== undefined) query.set('last_event_id', lastId)
      const ws = new WebSocket(
        `${base.replace(/^http/, 'ws')}/ws/chat/${clientId}?${query.toString()}`,
      )
      ws.addEventListener('message', (event) => {
        const data = String(event.data)
        onEvent(/^\{"id":"(\d+-\d+)"/.exec(data)?.[1], data)
      })
      ws.addEventListener('close', reconnectLater, { once: true })
      closeCurrent = () => ws.close()
    } else {
      const request = httpGet(`${base}/sse/chat?room=${room}`, {
        agent: false,
        headers: {
          accept: 'text/event-stream',
          ...(lastId === undefined ? {} : { 'last-event-id': lastId }),
        },
      })
      let isEnded = false
      const ended = () => {
        if (isEnded) return
        isEnded = true
        reconnectLater()
      }
      request.once('error', ended)
      request.once('response', (response: IncomingMessage) => {
        if (response.statusCode !== 200) {
          response.resume()
          response.once('end', ended)
          return
        }
        isReady = true
        response.setEncoding('utf8')
        let buffer = ''
        response.on('data', (chunk: string) => {
          buffer += chunk
          let end = buffer.indexOf('\n\n')
          while (end >= 0) {
            parseSseBlock(buffer.slice(0, end), onEvent)
            buffer = buffer.slice(end + 2)
            end = buffer.indexOf('\n\n')
          }
        })
        response.once('close', ended)
        response.on('error', () => {})
      })
      closeCurrent = () => request.destroy()
    }
  }
  connect()

  return {
    kind,
    room,
    get lastSeq() {
      return lastSeq
    },
    get lastId() {
      return lastId
    },
    get received() {
      return received
    },
    get missing() {
      return missing
    },
    get duplicates() {
      return duplicates
    },
    get reconnects() {
      return connections - 1
    },
    get isReady() {
      return isReady
    },
    stop() {
      isStopped = true
      closeCurrent?.()
    },
  }
}

function parseSseBlock(block: string, onEvent: (id: string | undefined, data: string) => void) {
  let id: string | undefined
  const data: string[] = []
  for (const line of block.split('\n')) {
    if (line.startsWith('id: ')) id = line.slice(4)
    else if (line.startsWith('data: ')) data.push(line.slice(6))
  }
  if (data.length > 0) onEvent(id, data.join('\n'))
}

function compareIds(a: string, b: string): number {
  const [msA = 0, seqA = 0] = a.split('-').map(Number)
  const [msB = 0, seqB = 0] = b.split('-').map(Number)
  return msA === msB ? seqA - seqB : msA - msB
}

/** Waits until `condition` holds, checking every `intervalMs`; false after `timeoutMs`. */
export async function until(
  condition: () => boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(intervalMs)
  }
  return true
}
