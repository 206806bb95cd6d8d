import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isAppError } from '../../shared/errors.ts'
import type { ItemPublic } from '../items/items-schemas.ts'
import type { ItemsService } from '../items/items-service.ts'
import { createPageRenderer, type PageRenderer } from './page-renderer.ts'

/** static/ at the repository root, served under /static/. */
export const STATIC_DIR = fileURLToPath(new URL('../../../static/', import.meta.url))

export interface PagesRoutesOptions {
  items: Pick<ItemsService, 'list' | 'getJson'>
  renderer?: PageRenderer
}

const PAGE_SIZE = 20
const MAX_PAGE = 1_000_000

/**
 * The pages do not run inline scripts or styles, load nothing from elsewhere and cannot be
 * framed: even a value that escaped escaping could not run.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-cache',
}

/**
 * HTML pages: GET / (the items, a page at a time), GET /items/{id} (one item, and an order form
 * for signed-in users), the assets under /static/, and a real 404 page for any other GET that
 * asks for HTML. API clients still get the JSON 404.
 */
export const pagesRoutes: FastifyPluginAsyncTypebox<PagesRoutesOptions> = async (
  app,
  { items, renderer = createPageRenderer() },
) => {
  await app.register(fastifyStatic, {
    root: STATIC_DIR,
    prefix: '/static/',
    index: false,
    list: false,
    maxAge: '1h',
    decorateReply: false,
    // The folder's README documents it; it is not an asset.
    allowedPath: (pathName) => !pathName.endsWith('.md'),
  })

  const sendPage = (
    reply: FastifyReply,
    status: number,
    template: string,
    context: Record<string, unknown>,
  ) =>
    reply
      .code(status)
      .headers(PAGE_HEADERS)
      .type('text/html; charset=utf-8')
      .send(renderer.render(template, context))

  const sendError = (reply: FastifyReply, status: 400 | 404, message: string) =>
    sendPage(reply, status, 'error.html', {
      status,
      title: status === 404 ? 'Page not found' : 'Bad request',
      message,
    })

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const page = pageNumber(request.query)
    if (page === undefined) return sendError(reply, 400, 'The page number must be 1 or more.')
    const result = await items.list(page, PAGE_SIZE)
    const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE))
    return sendPage(reply, 200, 'items.html', {
      items: result.items,
      total: result.total,
      page,
      pages,
      previousPage: page > 1 ? Math.min(page - 1, pages) : undefined,
      nextPage: page < pages ? page + 1 : undefined,
    })
  })

  app.get('/items/:id', { schema: { hide: true } }, async (request, reply) => {
    const { id } = request.params as { id: string }
    if (!/^\d{1,19}$/.test(id)) return sendError(reply, 404, 'There is no such item.')
    let item: ItemPublic
    try {
      item = JSON.parse(await items.getJson(id)) as ItemPublic
    } catch (error) {
      if (isAppError(error) && error.kind === 'not_found')
        return sendError(reply, 404, 'There is no such item. It may have been deleted.')
      throw error
    }
    return sendPage(reply, 200, 'item.html', { item })
  })

  // Every other GET: the HTML 404 page for browsers, the usual JSON 404 for API clients.
  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    if (!wantsHtml(request) || path.startsWith('/api/')) return reply.callNotFound()
    return sendError(reply, 404, `There is no page at ${path}.`)
  })
}

function wantsHtml(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('text/html')
}

/** `?page=` as a page number from 1; undefined when it is not one. */
function pageNumber(query: unknown): number | undefined {
  const value = (query as Record<string, unknown> | undefined)?.page
  if (value === undefined || value === '') return 1
  if (typeof value !== 'string' || !/^\d{1,7}$/.test(value)) return undefined
  const page = Number(value)
  return page >= 1 && page <= MAX_PAGE ? page : undefined
}
