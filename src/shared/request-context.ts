import { AsyncLocalStorage } from 'node:async_hooks'
import type { TraceContext } from './trace-context.ts'

/** What every log line, query log, outgoing call and job of one request knows about it. */
export interface RequestContext {
  requestId: string
  /** The W3C trace this work belongs to (see trace-context.ts); every request has one. */
  trace?: TraceContext
}

const storage = new AsyncLocalStorage<RequestContext>()

/** Runs `fn` with `context` visible to everything it calls, however deep and async. */
export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn)
}

/** The context of the request being served, or undefined outside one. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore()
}
