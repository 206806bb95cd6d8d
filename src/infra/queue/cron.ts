/**
 * Cron expressions in UTC, for the in-process scheduler and for checking schedules at start-up.
 * BullMQ computes the same times in Redis mode (it is given tz UTC).
 * Five fields (minute hour day-of-month month day-of-week) or six (seconds first); each is `*`,
 * `?`, a number or name (JAN, MON), a range `a-b`, a step `*\/n`, `a-b/n` or `a/n`, or a list of
 * these. As in Vixie cron, when both day fields are restricted a day matching either one runs.
 * Why here rather than a package: BullMQ's cron-parser is not a dependency of ours, and this
 * subset is small enough to own and test.
 */
export interface CronExpression {
  readonly source: string
  /** The first time strictly after `after` that matches, or undefined if none within 5 years. */
  next(after: Date): Date | undefined
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']

interface FieldSpec {
  name: string
  min: number
  max: number
  names?: string[]
  /** The first name stands for this number (1 for JAN). */
  nameBase?: number
}

const FIELDS: FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, nameBase: 0 },
]

/** Parses an expression; throws a TypeError naming the bad field. */
export function parseCron(source: string): CronExpression {
  const parts = source.trim().split(/\s+/)
  if (parts.length !== 5 && parts.length !== 6)
    throw new TypeError(`cron "${source}" must have 5 or 6 fields, has ${parts.length}`)
  const hasSeconds = parts.length === 6
  const [seconds, minutes, hours, days, months, weekdays] = (
    hasSeconds ? parts : ['0', ...parts]
  ).map((part, index) => parseField(part, FIELDS[index] as FieldSpec, source)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ]
  if (weekdays.delete(7)) weekdays.add(0)
  const rawDay = (hasSeconds ? parts[3] : parts[2]) as string
  const rawWeekday = (hasSeconds ? parts[5] : parts[4]) as string
  const isDayRestricted = !/^[*?]$/.test(rawDay)
  const isWeekdayRestricted = !/^[*?]$/.test(rawWeekday)

  const dayMatches = (date: Date): boolean => {
    const inMonth = days.has(date.getUTCDate())
    const inWeek = weekdays.has(date.getUTCDay())
    if (isDayRestricted && isWeekdayRestricted) return inMonth || inWeek
    return inMonth && inWeek
  }

  const expression: CronExpression = {
    source,
    next(after) {
      const stepMs = hasSeconds ? 1000 : 60_000
      let t = Math.floor(after.getTime() / stepMs) * stepMs + stepMs
      const limit = after.getTime() + 5 * 366 * 86_400_000
      while (t <= limit) {
        const d = new Date(t)
        if (!months.has(d.getUTCMonth() + 1)) {
          t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
        } else if (!dayMatches(d)) {
          t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
        } else if (!hours.has(d.getUTCHours())) {
          t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1)
        } else if (!minutes.has(d.getUTCMinutes())) {
          t = Math.floor(t / 60_000) * 60_000 + 60_000
        } else if (!seconds.has(d.getUTCSeconds())) {
          t = Math.floor(t / 1000) * 1000 + 1000
        } else {
          return d
        }
      }
      return undefined
    },
  }
  if (!expression.next(new Date(Date.UTC(2000, 0, 1))))
    throw new TypeError(`cron "${source}" never matches`)
  return expression
}

function parseField(text: string, spec: FieldSpec, source: string): Set<number> {
  const values = new Set<number>()
  const fail = (why: string): never => {
    throw new TypeError(`cron "${source}": ${spec.name} "${text}" ${why}`)
  }
  for (const item of text.split(',')) {
    const [range = '', stepText, extra] = item.split('/')
    if (extra !== undefined) fail('has two steps')
    const step = stepText === undefined ? 1 : Number(stepText)
    if (!Number.isInteger(step) || step < 1) fail('has a bad step')
    let from: number
    let to: number
    if (range === '*' || range === '?') {
      from = spec.min
      to = spec.name === 'day of week' ? 6 : spec.max
    } else {
      const [start = '', end, more] = range.split('-')
      if (more !== undefined) fail('has a bad range')
      from = parseValue(start, spec, fail)
      to =
        end !== undefined ? parseValue(end, spec, fail) : stepText !== undefined ? spec.max : from
    }
    if (from > to) fail('has a range that runs backwards')
    for (let value = from; value <= to; value += step) values.add(value)
  }
  return values
}

function parseValue(text: string, spec: FieldSpec, fail: (why: string) => never): number {
  const named = spec.names?.indexOf(text.toUpperCase()) ?? -1
  const value = named >= 0 ? named + (spec.nameBase ?? 0) : /^\d+$/.test(text) ? Number(text) : NaN
  if (!(value >= spec.min && value <= spec.max))
    fail(`is not a value from ${spec.min} to ${spec.max}`)
  return value
}
