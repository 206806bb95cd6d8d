import SerializerSelector from '@fastify/fast-json-stringify-compiler'
import type { Ajv, AnySchema, ValidateFunction } from 'ajv'

/*
 * Fastify compiles a validator (Ajv) and a serializer (fast-json-stringify) for every schema of
 * every route when the app starts: about a quarter of the time from start to the first answer,
 * and most of that code is for routes a given process may never serve. Here each one is
 * compiled when its route is first used instead, once, and kept. Both libraries are still the
 * ones Fastify would use, with the same options; only the moment changes.
 *
 * A schema that cannot compile would now fail its route's first request (a 500) instead of the
 * start-up: the route tests and the malformed-input suite, which call every route, catch it.
 */

/** Ajv plugin: `ajv.compile` returns a validator that compiles the schema on its first call. */
export function compileValidatorsOnFirstUse(ajv: Ajv): Ajv {
  const compile = ajv.compile.bind(ajv)
  ajv.compile = ((schema: AnySchema, meta?: boolean) => {
    // A schema with an $id is looked up by it (ajv.getSchema): it must be in Ajv now.
    if (typeof schema === 'object' && schema.$id !== undefined) return compile(schema, meta)
    let compiled: ValidateFunction | undefined
    const validate = ((data: unknown) => {
      compiled ??= compile(schema, meta)
      const isValid = compiled(data)
      // Fastify reads the errors from the function it was given.
      validate.errors = compiled.errors
      return isValid
    }) as ValidateFunction
    return validate
  }) as Ajv['compile']
  return ajv
}

type SerializerFactory = ReturnType<typeof SerializerSelector>

/** Fastify's own serializer factory, whose serializers compile their schema on first use. */
export function serializersCompiledOnFirstUse(): SerializerFactory {
  const buildFactory = SerializerSelector()
  return (externalSchemas, options) => {
    const compilerFor = buildFactory(externalSchemas, options)
    return (route) => {
      let serialize: ((document: unknown) => string) | undefined
      return (document) => {
        serialize ??= compilerFor(route)
        return serialize(document)
      }
    }
  }
}
