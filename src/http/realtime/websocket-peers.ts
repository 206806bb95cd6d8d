import type { FastifyBaseLogger } from 'fastify'

/**
 * The slice of a `ws` WebSocket the realtime routes use (the `ws` package ships no types of its
 * own here, and this is all we rely on).
 */
export interface RealtimeSocket {
  readonly readyState: number
  /** Bytes queued for the peer and not yet handed to the kernel. */
  readonly bufferedAmount: number
  send(data: string | Buffer, options?: { binary?: boolean }): void
  ping(): void
  close(code?: number, reason?: string): void
  terminate(): void
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
  on(event: 'pong', listener: () => void): this
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this
}

const OPEN = 1

/** Bounds that keep one peer from costing the server more than its share. */
export interface WebSocketLimits {
  /** Largest message accepted; a bigger one closes that socket with 1009. */
  maxPayloadBytes: number
  /** Bytes queued for one peer past which it counts as a slow reader and is cut off. */
  maxBufferedBytes: number
  /** Every peer is pinged this often; one that did not answer the previous ping is cut off. */
  heartbeatIntervalMs: number
  /** At shutdown, how long peers get to answer the close frame before being cut off. */
  closeGraceMs: number
}

export const DEFAULT_WEBSOCKET_LIMITS: Readonly<WebSocketLimits> = Object.freeze({
  maxPayloadBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
  heartbeatIntervalMs: 30_000,
  closeGraceMs: 2000,
})

/** One connected socket, with sends that cannot queue without bound. */
export interface Peer {
  readonly id: number
  readonly isOpen: boolean
  /** Sends unless the peer has fallen too far behind, in which case it is cut off: false. */
  send(data: string | Buffer, isBinary?: boolean): boolean
  sendJson(value: unknown): boolean
  close(code: number, reason: string): void
}

export interface PeerRegistry {
  /** Tracks `socket` until it closes: heartbeat, bounded sends, shutdown. */
  add(socket: RealtimeSocket, route: string): Peer
  readonly size: number
  /** Sends 1001 to every peer, waits up to `closeGraceMs`, then cuts off the rest. */
  closeAll(): Promise<void>
}

/**
 * The open WebSockets of one server. A timer pings every peer each `heartbeatIntervalMs` and
 * terminates those that did not answer the previous ping (a dead peer would otherwise hold its
 * socket, and everything queued for it, until TCP gives up hours later). A send to a peer whose
 * queue already holds more than `maxBufferedBytes` terminates it instead: a client that stops
 * reading cannot make the server's memory grow without bound.
 */
export function createPeerRegistry(
  limits: WebSocketLimits,
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>,
): PeerRegistry {
  const peers = new Map<RealtimeSocket, { peer: Peer; route: string; isAlive: boolean }>()
  let nextId = 1
  let heartbeat: NodeJS.Timeout | undefined

  const beat = () => {
    for (const [socket, state] of peers) {
      if (!state.isAlive) {
        log.info(
          { peer: state.peer.id, route: state.route },
          'websocket peer missed its ping: cut off',
        )
        socket.terminate()
        continue
      }
      state.isAlive = false
      try {
        socket.ping()
      } catch {
        // Not open any more: its close event removes it.
      }
    }
  }

  return {
    add(socket, route) {
      const id = nextId++
      const peer: Peer = {
        id,
        get isOpen() {
          return socket.readyState === OPEN
        },
        send(data, isBinary = false) {
          if (socket.readyState !== OPEN) return false
          if (socket.bufferedAmount > limits.maxBufferedBytes) {
            log.warn(
              { peer: id, route, bufferedBytes: socket.bufferedAmount },
              'websocket peer reads too slowly: cut off',
            )
            socket.terminate()
            return false
          }
          socket.send(data, { binary: isBinary })
          return true
        },
        sendJson(value) {
          return peer.send(JSON.stringify(value))
        },
        close(code, reason) {
          socket.close(code, reason)
        },
      }
      const state = { peer, route, isAlive: true }
      peers.set(socket, state)
      socket.on('pong', () => {
        state.isAlive = true
      })
      socket.on('close', () => {
        peers.delete(socket)
        if (peers.size === 0 && heartbeat) {
          clearInterval(heartbeat)
          heartbeat = undefined
        }
      })
      heartbeat ??= setInterval(beat, limits.heartbeatIntervalMs).unref()
      return peer
    },

    get size() {
      return peers.size
    },

    async closeAll() {
      if (peers.size === 0) return
      const sockets = [...peers.keys()]
      const closed = sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            socket.on('close', () => resolve())
          }),
      )
      for (const socket of sockets) socket.close(1001, 'server shutting down')
      let timer: NodeJS.Timeout | undefined
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, limits.closeGraceMs)
      })
      await Promise.race([Promise.all(closed), graceOver])
      clearTimeout(timer)
      for (const socket of peers.keys()) socket.terminate()
    },
  }
}
