import Type from 'typebox'
import { Compile } from 'typebox/compile'

/**
 * One input line: an event as the apps send it. Only the fields below are required and kept;
 * anything else (session, ip, properties, device details) may be there and is dropped.
 */
export const InputEventSchema = Type.Object({
  user_id: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0 })]),
  action: Type.String({ minLength: 1, maxLength: 64 }),
  timestamp: Type.String({ format: 'date-time' }),
  device: Type.Object({ type: Type.String({ minLength: 1, maxLength: 32 }) }),
})
export type InputEvent = Type.Static<typeof InputEventSchema>

/** One output line. user_id is a string, as every id in servekit's JSON. */
export const OutputEventSchema = Type.Object({
  user_id: Type.String(),
  action: Type.String(),
  timestamp: Type.String(),
  device_type: Type.String(),
})
export type OutputEvent = Type.Static<typeof OutputEventSchema>

const inputEvent = Compile(InputEventSchema)

export type LineVerdict = { isValid: true; line: string } | { isValid: false; reason: string }

/** Marks a blank line: not a record, neither good nor bad. */
export const BLANK = { isValid: false, reason: 'blank' } as const

/** Parses one input line into the output line (JSON text, no newline), or says why not. */
export function transformLine(text: string): LineVerdict {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return text.trim() === '' ? BLANK : { isValid: false, reason: 'invalid JSON' }
  }
  if (!inputEvent.Check(value)) return { isValid: false, reason: explain(value) }
  const output: OutputEvent = {
    user_id: String(value.user_id),
    action: value.action,
    timestamp: value.timestamp,
    device_type: value.device.type,
  }
  return { isValid: true, line: JSON.stringify(output) }
}

/** The first problem of an invalid event, for the report (runs only on bad lines). */
function explain(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object'
  const record = value as Record<string, unknown>
  for (const field of ['user_id', 'action', 'timestamp', 'device'])
    if (record[field] === undefined) return `missing ${field}`
  const device = record.device
  if (
    typeof device === 'object' &&
    device !== null &&
    (device as { type?: unknown }).type === undefined
  )
    return 'missing device.type'
  const [first] = inputEvent.Errors(value)
  const where = first?.instancePath.slice(1).replaceAll('/', '.') || 'record'
  return `invalid ${where}`
}
