import { readFileSync } from 'node:fs'

/** The parts of a V8 .cpuprofile this summary reads. */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  /** Microseconds on the monotonic clock (the one `process.hrtime` reads, in every process). */
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface SummaryOptions {
  top?: number
  /** Only samples taken in this window (monotonic µs, as `process.hrtime.bigint() / 1000n`). */
  fromUs?: number
  toUs?: number
  /** Leave idle time out of the total, so shares are of the time the process was busy. */
  isExcludingIdle?: boolean
}

export interface HotFunction {
  /** `name (file:line)`, the file shortened to what follows node_modules/ or the repo. */
  name: string
  /** Share of all sampled time spent in the function itself. */
  selfPercent: number
  selfMs: number
  /** Share of time with the function anywhere on the stack (inclusive). */
  totalPercent: number
}

/** Where the sampled time went: self time per function, top first; idle and GC included. */
export function summarizeCpuProfile(path: string, options: SummaryOptions = {}): HotFunction[] {
  const { top = 25, fromUs = -Infinity, toUs = Infinity, isExcludingIdle = false } = options
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parentOf.set(child, node.id)

  const selfUs = new Map<number, number>()
  const idleIds = new Set(
    profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id),
  )
  let totalUs = 0
  let sampleAt = profile.startTime
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0
    sampleAt += delta
    if (sampleAt < fromUs || sampleAt > toUs) return
    if (isExcludingIdle && idleIds.has(id)) return
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
    totalUs += delta
  })

  const keyOf = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame
    if (!url) return functionName || '(anonymous)'
    return `${functionName || '(anonymous)'} (${shorten(url)}:${lineNumber + 1})`
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (!node) continue
    const key = keyOf(node)
    self.set(key, (self.get(key) ?? 0) + us)
    // Inclusive: every distinct function on this sample's stack gets the time once.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at)
      if (!frame) break
      const frameKey = keyOf(frame)
      if (seen.has(frameKey)) continue
      seen.add(frameKey)
      inclusive.set(frameKey, (inclusive.get(frameKey) ?? 0) + us)
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({
      name,
      selfPercent: round((100 * us) / totalUs),
      selfMs: round(us / 1000),
      totalPercent: round((100 * (inclusive.get(name) ?? us)) / totalUs),
    }))
}

/** Inclusive time of the functions whose name matches, top first (where a subsystem's cost is). */
export function inclusiveMatching(
  path: string,
  pattern: RegExp,
  options: SummaryOptions = {},
): HotFunction[] {
  return summarizeCpuProfile(path, { ...options, top: Number.MAX_SAFE_INTEGER })
    .filter((entry) => pattern.test(entry.name))
    .sort((a, b) => b.totalPercent - a.totalPercent)
    .slice(0, options.top ?? 15)
}

function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('node_modules/')
  if (modules >= 0) return path.slice(modules + 'node_modules/'.length)
  const source = path.search(/\/(src|bench|test)\//)
  return source >= 0 ? path.slice(source + 1) : path
}

const round = (value: number) => Math.round(value * 10) / 10

if (import.meta.main) {
  const [path, count, fromUs, toUs] = process.argv.slice(2)
  if (!path) {
    process.stderr.write(
      'usage: node bench/cpuprofile-summary.ts <file.cpuprofile> [top] [from-µs to-µs (monotonic)]\n',
    )
    process.exit(2)
  }
  const rows = summarizeCpuProfile(path, {
    top: count ? Number(count) : 30,
    isExcludingIdle: true,
    ...(fromUs ? { fromUs: Number(fromUs) } : {}),
    ...(toUs ? { toUs: Number(toUs) } : {}),
  })
  process.stdout.write('  self%   self ms  total%  function   (shares of busy time)\n')
  for (const row of rows) {
    process.stdout.write(
      `${row.selfPercent.toFixed(1).padStart(7)} ${row.selfMs.toFixed(0).padStart(9)} ${row.totalPercent.toFixed(1).padStart(7)}  ${row.name}\n`,
    )
  }
}
