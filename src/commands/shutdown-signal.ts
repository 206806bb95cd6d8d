import { once } from 'node:events'

/**
 * Resolves with the signal's name on the first SIGTERM or SIGINT. A second one means "now"
 * (the operator has run out of patience): the process exits at once, 143 or 130.
 */
export async function shutdownSignal(): Promise<'SIGTERM' | 'SIGINT'> {
  const stop = new AbortController()
  const reason = await Promise.race([
    once(process, 'SIGTERM', { signal: stop.signal }).then(() => 'SIGTERM' as const),
    once(process, 'SIGINT', { signal: stop.signal }).then(() => 'SIGINT' as const),
  ])
  stop.abort()
  process.once('SIGTERM', () => process.exit(143))
  process.once('SIGINT', () => process.exit(130))
  return reason
}
