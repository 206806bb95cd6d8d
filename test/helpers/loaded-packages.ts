/**
 * Preloaded with `--import` (through NODE_OPTIONS) into a process under test: records every
 * package in node_modules that the process loads, by import or require, and prints them on exit
 * as one line, `loaded packages: a b c`. Node's own bundled undici (behind fetch and WebSocket,
 * and loaded by an ES import of node:http) is listed as `node:undici`.
 */
import { registerHooks } from 'node:module'

const loaded = new Set<string>()
registerHooks({
  load(url, context, nextLoad) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]
    if (name) loaded.add(name)
    return nextLoad(url, context)
  },
})
process.on('exit', () => {
  // Undocumented, and not in @types/node: the internal modules Node has loaded.
  const { moduleLoadList = [] } = process as unknown as { moduleLoadList?: string[] }
  if (moduleLoadList.some((name) => name.endsWith('internal/deps/undici/undici')))
    loaded.add('node:undici')
  process.stderr.write(`\nloaded packages: ${[...loaded].sort().join(' ')}\n`)
})
