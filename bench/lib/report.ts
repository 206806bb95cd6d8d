import type { RunResult } from './wrk.ts'

export type SystemName = 'servekit' | 'peer' | 'bare' | 'fastify'

/** One workload's runs per system, in the order they ran (A B A B …). */
export interface WorkloadResult {
  name: string
  title: string
  systems: SystemName[]
  runs: Partial<Record<SystemName, RunResult[]>>
  summary: Partial<Record<SystemName, Summary>>
  /** servekit ÷ peer. */
  rpsRatio?: number
  /** servekit p99 ÷ peer p99 (lower is better). */
  p99Ratio?: number
  /** servekit ÷ bare node:http (the /health ceiling). */
  bareRatio?: number
  /** peer CPU per request ÷ servekit CPU per request (how much less CPU servekit needs). */
  cpuRatio?: number
  note?: string
  skipped?: string
}

export interface Summary {
  rps: number
  p50Ms: number
  p99Ms: number
  errors: number
  non2xx: number
  requests: number
  cpuUsPerRequest?: number
}

export interface Target {
  name: string
  /** What is wanted, as text: "≥ 4.0×", "≤ 80 MB". */
  wanted: string
  actual: string
  met: boolean | undefined
  /** How far off when missed, as text. */
  missedBy?: string
}

/**
 * The rounds' medians (of 2, the mean): on a shared machine one round can be hit by another
 * process's burst, and the median does not let it move the figure.
 */
export function summarize(runs: RunResult[]): Summary {
  const median = (pick: (run: RunResult) => number) => {
    const values = runs.map(pick).sort((a, b) => a - b)
    const middle = Math.floor(values.length / 2)
    if (values.length === 0) return 0
    return values.length % 2 === 1
      ? (values[middle] as number)
      : ((values[middle - 1] as number) + (values[middle] as number)) / 2
  }
  const isCpuMeasured = runs.length > 0 && runs.every((run) => run.cpuUsPerRequest !== undefined)
  return {
    ...(isCpuMeasured ? { cpuUsPerRequest: median((run) => run.cpuUsPerRequest ?? 0) } : {}),
    rps: median((run) => run.rps),
    p50Ms: median((run) => run.p50Ms),
    p99Ms: median((run) => run.p99Ms),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
  }
}

/** At least `wanted` (a ratio): met, or missed by the share still missing. */
export function atLeast(
  name: string,
  actual: number | undefined,
  wanted: number,
  unit = '×',
): Target {
  if (actual === undefined)
    return { name, wanted: `≥ ${fmt(wanted)}${unit}`, actual: 'n/a', met: undefined }
  const met = actual >= wanted
  return {
    name,
    wanted: `≥ ${fmt(wanted)}${unit}`,
    actual: `${fmt(actual)}${unit}`,
    met,
    ...(met
      ? {}
      : { missedBy: `${pct(1 - actual / wanted)} short (needs ${fmt(wanted / actual)}× more)` }),
  }
}

/** At most `limit`: met, or missed by how much it is over. */
export function atMost(
  name: string,
  actual: number | undefined,
  limit: number,
  unit: string,
): Target {
  if (actual === undefined)
    return { name, wanted: `≤ ${fmt(limit)} ${unit}`, actual: 'n/a', met: undefined }
  const met = actual <= limit
  return {
    name,
    wanted: `≤ ${fmt(limit)} ${unit}`,
    actual: `${fmt(actual)} ${unit}`,
    met,
    ...(met
      ? {}
      : { missedBy: `${pct(actual / limit - 1)} over (${fmt(actual - limit)} ${unit})` }),
  }
}

export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value)
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US')
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const pct = (share: number) => `${(share * 100).toFixed(0)}%`

const cpu = (summary: Summary | undefined) =>
  summary?.cpuUsPerRequest === undefined ? '–' : summary.cpuUsPerRequest.toFixed(0)

const cell = (value: number | undefined, digits = 2) =>
  value === undefined
    ? '–'
    : value >= 1000
      ? Math.round(value).toLocaleString('en-US')
      : value.toFixed(digits)

/** The side-by-side table, markdown. */
export function workloadTable(workloads: WorkloadResult[]): string {
  const lines = [
    '| workload | servekit req/s | p50 ms | p99 ms | peer req/s | p50 ms | p99 ms | req/s ratio | p99 ratio | CPU µs/req (sk/peer) | CPU ratio | errors (sk/peer) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const workload of workloads) {
    if (workload.skipped) {
      lines.push(`| ${workload.title} | skipped: ${workload.skipped} | | | | | | | | | | |`)
      continue
    }
    const sk = workload.summary.servekit
    const peer = workload.summary.peer
    lines.push(
      `| ${workload.title} | ${cell(sk?.rps)} | ${cell(sk?.p50Ms)} | ${cell(sk?.p99Ms)} | ${cell(peer?.rps)} | ${cell(peer?.p50Ms)} | ${cell(peer?.p99Ms)} | ${workload.rpsRatio === undefined ? '–' : `${workload.rpsRatio.toFixed(2)}×`} | ${workload.p99Ratio === undefined ? '–' : workload.p99Ratio.toFixed(2)} | ${cpu(sk)}/${cpu(peer)} | ${workload.cpuRatio === undefined ? '–' : `${workload.cpuRatio.toFixed(2)}×`} | ${sk?.errors ?? '–'}/${peer?.errors ?? '–'} |`,
    )
    const bare = workload.summary.bare
    if (bare) {
      lines.push(
        `| ↳ bare node:http | ${cell(bare.rps)} | ${cell(bare.p50Ms)} | ${cell(bare.p99Ms)} | | | | servekit = ${((workload.bareRatio ?? 0) * 100).toFixed(0)}% of bare | | ${cpu(bare)} | | ${bare.errors} |`,
      )
    }
    const fastify = workload.summary.fastify
    if (fastify) {
      lines.push(
        `| ↳ minimal Fastify | ${cell(fastify.rps)} | ${cell(fastify.p50Ms)} | ${cell(fastify.p99Ms)} | | | | | | ${cpu(fastify)} | | ${fastify.errors} |`,
      )
    }
  }
  return lines.join('\n')
}

export function targetTable(targets: Target[]): string {
  const lines = ['| target | wanted | actual | met | missed by |', '|---|---|---|---|---|']
  for (const target of targets) {
    const met = target.met === undefined ? 'n/a' : target.met ? 'yes' : '**no**'
    lines.push(
      `| ${target.name} | ${target.wanted} | ${target.actual} | ${met} | ${target.missedBy ?? ''} |`,
    )
  }
  return lines.join('\n')
}
