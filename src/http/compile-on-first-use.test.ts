import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Ajv, type ValidateFunction } from 'ajv'
import Fastify from 'fastify'
import {
  compileValidatorsOnFirstUse,
  serializersCompiledOnFirstUse,
} from './compile-on-first-use.ts'

test('a validator compiles its schema on its first call, once, and reports errors as Ajv does', () => {
  const ajv = new Ajv()
  let compiled = 0
  const compile = ajv.compile.bind(ajv)
  ajv.compile = ((schema: object) => {
    compiled++
    return compile(schema)
  }) as Ajv['compile']
  compileValidatorsOnFirstUse(ajv)

  const validate = ajv.compile({
    type: 'object',
    properties: { n: { type: 'integer' } },
    required: ['n'],
  })
  assert.equal(compiled, 0, 'nothing compiled before the first call')
  assert.equal(validate({ n: 1 }), true)
  assert.equal(errorCount(validate), 0)
  assert.equal(validate({ n: 'x' }), false)
  assert.equal(errorCount(validate), 1)
  assert.equal(validate.errors?.[0]?.instancePath, '/n')
  assert.equal(validate({ n: 2 }), true)
  assert.equal(compiled, 1, 'compiled once, on the first call')
})

function errorCount(validate: ValidateFunction): number {
  return validate.errors?.length ?? 0
}

test('a Fastify app with both compilers validates, coerces and serializes each route on first use', async (t) => {
  const app = Fastify({
    ajv: { plugins: [compileValidatorsOnFirstUse] },
    schemaController: { compilersFactory: { buildSerializer: serializersCompiledOnFirstUse() } },
  })
  t.after(() => app.close())
  app.get(
    '/double/:n',
    {
      schema: {
        params: { type: 'object', properties: { n: { type: 'integer' } } },
        response: {
          200: { type: 'object', properties: { doubled: { type: 'integer' } } },
        },
      },
    },
    async (request) => {
      const { n } = request.params as { n: number }
      // The response schema drops the field it does not name.
      return { doubled: n * 2, secret: 'not in the schema' }
    },
  )
  const good = await app.inject('/double/21')
  assert.equal(good.statusCode, 200)
  assert.equal(good.body, '{"doubled":42}')
  const bad = await app.inject('/double/abc')
  assert.equal(bad.statusCode, 400)
  assert.match(bad.json().message, /params\/n must be integer/)
})
