import type { Ajv, AnySchema, SchemaObject } from 'ajv'

const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const
const SUBSCHEMAS = [
  'items',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
] as const
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions'] as const

/**
 * Ajv plugin: a number that type coercion made infinite fails validation. With `coerceTypes`,
 * Ajv turns any string that reads as a number into one, "1e999" or 400 nines included, and that
 * gives Infinity; its `minimum`/`maximum` checks are skipped for non-finite numbers (they trust
 * the type check, which coercion has already passed), so `?page=1e999` reached the database
 * and `"stock": "999…9"` was stored as Infinity. Each number schema is given a `finite` check,
 * which runs after coercion; the route schemas themselves (and so the OpenAPI document) are
 * not changed: the compiled copy is.
 */
export function rejectNonFiniteNumbers(ajv: Ajv): Ajv {
  ajv.addKeyword({
    keyword: 'finite',
    schemaType: 'boolean',
    errors: true,
    validate: isFiniteNumber,
  })
  const compile = ajv.compile.bind(ajv)
  ajv.compile = ((schema: AnySchema, meta?: boolean) =>
    compile(withFiniteNumbers(schema), meta)) as Ajv['compile']
  return ajv
}

function isFiniteNumber(_: boolean, data: unknown): boolean {
  if (typeof data !== 'number' || Number.isFinite(data)) return true
  ;(isFiniteNumber as { errors?: unknown[] }).errors = [
    { keyword: 'finite', message: 'must be a finite number', params: {} },
  ]
  return false
}

/** A copy of `schema` in which every number or integer schema carries `finite: true`. */
export function withFiniteNumbers<S extends AnySchema>(schema: S): S {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema
  const copy = { ...schema } as SchemaObject
  const types = Array.isArray(copy.type) ? copy.type : [copy.type]
  if (types.includes('number') || types.includes('integer')) copy.finite = true
  for (const key of SUBSCHEMAS) if (key in copy) copy[key] = withFiniteNumbers(copy[key])
  for (const key of SUBSCHEMA_LISTS)
    if (Array.isArray(copy[key])) copy[key] = copy[key].map(withFiniteNumbers)
  if (Array.isArray(copy.items)) copy.items = copy.items.map(withFiniteNumbers)
  for (const key of SUBSCHEMA_MAPS) {
    if (copy[key] && typeof copy[key] === 'object')
      copy[key] = Object.fromEntries(
        Object.entries(copy[key] as Record<string, AnySchema>).map(([name, value]) => [
          name,
          withFiniteNumbers(value),
        ]),
      )
  }
  return copy as S
}
