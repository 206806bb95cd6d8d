/** The counters the pipeline updates as it goes; the reporter reads them on its own timer. */
export interface ProgressState {
  /** Compressed input bytes read, of `bytesTotal`: the share of the work done. */
  bytesDone: number
  bytesTotal: number
  good: number
  bad: number
  fileIndex: number
  files: number
  startedMs: number
}

export type ProgressMode = 'bar' | 'lines' | 'none'

export interface ProgressOutput {
  write(text: string): unknown
  isTTY?: boolean
}

export interface ProgressReporter {
  /** Stops the timer and draws the final state. */
  stop(): void
}

/**
 * Shows progress with rate and ETA: a bar redrawn in place on a terminal, a plain line every
 * `intervalMs` otherwise (logs, CI). The ETA comes from the share of input bytes read.
 */
export function startProgress(
  state: ProgressState,
  mode: ProgressMode,
  output: ProgressOutput,
  intervalMs: number,
  nowMs: () => number = performance.now.bind(performance),
): ProgressReporter {
  if (mode === 'none') return { stop() {} }
  const draw = () => {
    const text = describeProgress(state, nowMs())
    if (mode === 'bar') output.write(`\r${bar(state)} ${text}\u001b[K`)
    else output.write(`pipeline: ${text}\n`)
  }
  const timer = setInterval(draw, mode === 'bar' ? Math.min(intervalMs, 200) : intervalMs)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      draw()
      if (mode === 'bar') output.write('\n')
    },
  }
}

/** e.g. "62.4% file 3/5 624,000 records (31 bad) 312,000 rec/s ETA 1s". */
export function describeProgress(state: ProgressState, nowMs: number): string {
  const share = state.bytesTotal > 0 ? Math.min(1, state.bytesDone / state.bytesTotal) : 1
  const elapsedSeconds = Math.max(0.001, (nowMs - state.startedMs) / 1000)
  const records = state.good + state.bad
  const rate = records / elapsedSeconds
  const eta = share > 0 ? (elapsedSeconds * (1 - share)) / share : Number.NaN
  return [
    `${(share * 100).toFixed(1).padStart(5)}%`,
    `file ${state.fileIndex}/${state.files}`,
    `${records.toLocaleString('en-US')} records (${state.bad.toLocaleString('en-US')} bad)`,
    `${Math.round(rate).toLocaleString('en-US')} rec/s`,
    `ETA ${formatSeconds(eta)}`,
  ].join('  ')
}

function bar(state: ProgressState, width = 24): string {
  const share = state.bytesTotal > 0 ? Math.min(1, state.bytesDone / state.bytesTotal) : 1
  const filled = Math.round(share * width)
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  if (seconds < 60) return `${Math.ceil(seconds)}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
}
