/**
 * Walks the OpenAPI document the app serves (GET /openapi.json) for the fault suite: the
 * operations with their parameters, bodies and documented answers, a valid example of a JSON
 * schema, and Ajv validators for the answers. The malformed-input and authorisation files both
 * take their routes from here, so a new route is attacked without anyone listing it.
 */
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'

/** A JSON schema as the document carries it (all inline: @fastify/swagger writes no $refs here). */
export type JsonSchema = Record<string, unknown>

export interface OpenApiDocument {
  openapi: string
  paths: Record<string, Record<string, RawOperation>>
}

interface RawOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: JsonSchema }>
  requestBody?: { required?: boolean; content: Record<string, { schema?: JsonSchema }> }
  responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>
  security?: Array<Record<string, string[]>>
}

export interface Parameter {
  name: string
  required: boolean
  schema: JsonSchema
}

/** One method on one path, as the document describes it. */
export interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** The OpenAPI path, e.g. /api/items/{id}. */
  path: string
  /** It needs a bearer token (the document lists a security requirement). */
  isSecured: boolean
  /** It answers with a text/event-stream that stays open: never sent by the generators. */
  isEventStream: boolean
  pathParams: Parameter[]
  query: Parameter[]
  headers: Parameter[]
  /** The JSON request body's schema, if it takes one. */
  body?: JsonSchema
  bodyContentTypes: string[]
  /** Documented statuses: their JSON schema, or undefined for a non-JSON answer. */
  responses: Map<number, JsonSchema | undefined>
}

/** Fetches the document through `get` (an inject or a fetch) and lists its operations. */
export async function loadOperations(
  get: (url: string) => Promise<{ status: number; json: () => unknown }>,
): Promise<{ document: OpenApiDocument; operations: Operation[] }> {
  const response = await get('/openapi.json')
  if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`)
  const document = response.json() as OpenApiDocument
  return { document, operations: operationsOf(document) }
}

/** Every operation of the document, in its order. */
export function operationsOf(document: OpenApiDocument): Operation[] {
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, raw] of Object.entries(methods)) {
      const upper = method.toUpperCase()
      if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(upper)) continue
      const parameters = (where: string) =>
        (raw.parameters ?? [])
          .filter((parameter) => parameter.in === where)
          .map((parameter) => ({
            name: parameter.name,
            required: parameter.required === true,
            schema: parameter.schema ?? {},
          }))
      const content = raw.requestBody?.content ?? {}
      const responses = new Map<number, JsonSchema | undefined>()
      let isEventStream = false
      for (const [status, answer] of Object.entries(raw.responses ?? {})) {
        if (answer.content?.['text/event-stream']) isEventStream = true
        responses.set(Number(status), answer.content?.['application/json']?.schema)
      }
      operations.push({
        method: upper as Operation['method'],
        path,
        isSecured: (raw.security ?? []).length > 0,
        isEventStream,
        pathParams: parameters('path'),
        query: parameters('query'),
        headers: parameters('header'),
        ...(content['application/json']?.schema
          ? { body: content['application/json'].schema }
          : {}),
        bodyContentTypes: Object.keys(content),
        responses,
      })
    }
  }
  return operations
}

/** `/api/items/{id}` with `{id: '7'}` → `/api/items/7` (values are inserted as given). */
export function fillPath(path: string, values: Readonly<Record<string, string>>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`no value for path parameter ${name} of ${path}`)
    return value
  })
}

/** `method path`, the way the report names an operation. */
export function nameOf(operation: Operation): string {
  return `${operation.method} ${operation.path}`
}

/**
 * A small valid value for `schema`: the minimum, the first branch, the required fields. Enough
 * for the generators to start from a request that passes validation and then break one thing.
 */
export function exampleOf(schema: JsonSchema, depth = 0): unknown {
  if (depth > 20) return null
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum)) return schema.enum[0]
  if ('default' in schema) return schema.default
  const branches = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined
  if (branches?.[0]) return exampleOf(branches[0], depth + 1)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'string': {
      if (schema.format === 'int64' || schema.pattern === '^[0-9]{1,19}$') return '1'
      if (schema.format === 'date-time') return new Date(0).toISOString()
      if (typeof schema.pattern === 'string' && schema.pattern.includes('A-Za-z0-9'))
        return 'abc123'
      return 'x'.repeat(Math.max(1, Number(schema.minLength ?? 1)))
    }
    case 'integer':
    case 'number': {
      if (typeof schema.minimum === 'number') return Math.max(schema.minimum, 1)
      if (typeof schema.exclusiveMinimum === 'number') return schema.exclusiveMinimum + 1
      return 1
    }
    case 'boolean':
      return true
    case 'null':
      return null
    case 'array': {
      const items = (schema.items ?? {}) as JsonSchema
      return Array.from({ length: Math.max(1, Number(schema.minItems ?? 1)) }, () =>
        exampleOf(items, depth + 1),
      )
    }
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>
      const required = new Set((schema.required ?? []) as string[])
      const value: Record<string, unknown> = {}
      for (const [name, property] of Object.entries(properties))
        if (required.has(name) || Number(schema.minProperties ?? 0) > Object.keys(value).length)
          value[name] = exampleOf(property, depth + 1)
      return value
    }
    default:
      return 'x'
  }
}

/** The properties a JSON body schema names (its union branches' too). */
export function propertiesOf(schema: JsonSchema): Record<string, JsonSchema> {
  const branches = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined
  if (branches) return Object.assign({}, ...branches.map(propertiesOf))
  return (schema.properties ?? {}) as Record<string, JsonSchema>
}

/**
 * Checks answers against the document: a 2xx JSON body against its documented schema, and an
 * error body against the API's two error shapes (`{detail, code}`; 422: `{detail: [{loc, msg,
 * type}]}`). Uses Ajv, the validator Fastify ships.
 */
export function createAnswerChecker() {
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats.default(ajv)
  ajv.addFormat('int64', /^-?\d{1,19}$/)
  const compiled = new WeakMap<JsonSchema, ValidateFunction>()
  const validatorOf = (schema: JsonSchema) => {
    let validate = compiled.get(schema)
    if (!validate) {
      validate = ajv.compile(schema)
      compiled.set(schema, validate)
    }
    return validate
  }
  const errorShape = validatorOf({
    type: 'object',
    required: ['detail', 'code'],
    properties: {
      detail: { type: 'string', minLength: 1 },
      code: { type: 'string', minLength: 1 },
    },
  })
  const validationShape = validatorOf({
    type: 'object',
    required: ['detail'],
    properties: {
      detail: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['loc', 'msg', 'type'],
          properties: {
            loc: { type: 'array', minItems: 1, items: { type: ['string', 'integer'] } },
            msg: { type: 'string', minLength: 1 },
            type: { type: 'string', minLength: 1 },
          },
        },
      },
    },
  })

  return {
    /** Whether an error answer's body is in the API's error shape (undefined) or why not. */
    checkError(status: number, contentType: string | undefined, body: string): string | undefined {
      if (!contentType?.startsWith('application/json')) return `content-type ${contentType}`
      let value: unknown
      try {
        value = JSON.parse(body)
      } catch {
        return `not JSON: ${body.slice(0, 80)}`
      }
      const isShaped =
        errorShape(value) || (status === 422 && validationShape(value)) || validationShape(value)
      return isShaped ? undefined : `off-shape body: ${body.slice(0, 120)}`
    },
    /** Whether a 2xx answer matches the operation's documented schema (undefined) or why not. */
    checkSuccess(
      operation: Operation,
      status: number,
      contentType: string | undefined,
      body: string,
    ): string | undefined {
      if (!operation.responses.has(status)) return `undocumented status ${status}`
      const schema = operation.responses.get(status)
      if (schema === undefined) return undefined
      if (status === 204) return body === '' ? undefined : `204 with a body: ${body.slice(0, 80)}`
      if (!contentType?.startsWith('application/json')) return `content-type ${contentType}`
      let value: unknown
      try {
        value = JSON.parse(body)
      } catch {
        return `not JSON: ${body.slice(0, 80)}`
      }
      const validate = validatorOf(schema)
      if (validate(value)) return undefined
      return `${ajv.errorsText(validate.errors)}: ${body.slice(0, 120)}`
    },
  }
}
