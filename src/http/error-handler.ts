import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable } from '../infra/db/errors.ts'
import { type ErrorKind, isAppError } from '../shared/errors.ts'

/** Seconds a client is told to wait (Retry-After) when the database is unreachable. */
const DATABASE_RETRY_AFTER_SECONDS = 2

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 422,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
  upstream_failed: 502,
  upstream_timeout: 504,
}

/** One problem in FastAPI's 422 shape. */
export interface ValidationProblem {
  loc: Array<string | number>
  msg: string
  type: string
}

/**
 * Answers every error in FastAPI's shapes, so clients written for the Python service keep
 * working: `{detail, code}`, and for 422 `{detail: [{loc, msg, type}]}`. Unknown errors are bugs:
 * logged with the stack and the request id, answered without internals.
 */
export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (isAppError(error)) {
      const status = STATUS_BY_KIND[error.kind]
      if (error.kind === 'unauthorized') reply.header('www-authenticate', 'Bearer')
      if (error.kind === 'invalid' && Array.isArray(error.details))
        return reply.code(422).send({ detail: error.details })
      return reply.code(status).send({ detail: error.message, code: error.code })
    }
    if (error.validation) {
      return reply.code(422).send({
        detail: error.validation.map((issue) => toProblem(issue, error.validationContext)),
      })
    }
    if (
      error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      (error instanceof SyntaxError && error.statusCode === 400)
    ) {
      return reply.code(422).send({
        detail: [
          { loc: ['body'], msg: `JSON decode error: ${error.message}`, type: 'json_invalid' },
        ],
      })
    }
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return reply.code(422).send({
        detail: [{ loc: ['body'], msg: 'Field required: the JSON body is empty', type: 'missing' }],
      })
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ detail: error.message, code: error.code ?? 'BAD_REQUEST' })
    }
    if (isDatabaseUnavailable(error)) {
      // An outage, not a bug: logged without the stack, answered so clients retry.
      request.log.warn(
        { err: { message: error.message, code: error.code } },
        'database unavailable',
      )
      return reply.code(503).header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS)).send({
        detail: 'The database is unavailable; retry shortly',
        code: 'DATABASE_UNAVAILABLE',
      })
    }
    request.log.error({ err: error }, 'unhandled error')
    return reply.code(500).send({ detail: 'Internal Server Error', code: 'INTERNAL_ERROR' })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      detail: `Not Found: ${request.method} ${request.url.split('?')[0]}`,
      code: 'NOT_FOUND',
    })
  })
}

interface AjvIssue {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

function toProblem(issue: AjvIssue, context: string | undefined): ValidationProblem {
  const where =
    context === 'params' ? 'path' : context === 'querystring' ? 'query' : (context ?? 'body')
  const path = issue.instancePath
    .split('/')
    .slice(1)
    .map((part) =>
      /^\d+$/.test(part) ? Number(part) : part.replaceAll('~1', '/').replaceAll('~0', '~'),
    )
  if (issue.keyword === 'required') path.push(String(issue.params.missingProperty))
  if (issue.keyword === 'additionalProperties') path.push(String(issue.params.additionalProperty))
  return { loc: [where, ...path], msg: describe(issue), type: issue.keyword }
}

function describe(issue: AjvIssue): string {
  switch (issue.keyword) {
    case 'required':
      return 'Field required'
    case 'additionalProperties':
      return 'Extra field not permitted'
    default:
      return issue.message
        ? issue.message.charAt(0).toUpperCase() + issue.message.slice(1)
        : 'Invalid value'
  }
}
