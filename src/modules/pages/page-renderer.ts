import { fileURLToPath } from 'node:url'
import nunjucks from 'nunjucks'

/** templates/ at the repository root. */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../../templates/', import.meta.url))

/** Renders a template from templates/ with a context; every value is HTML-escaped. */
export interface PageRenderer {
  render(template: string, context: Record<string, unknown>): string
}

export interface PageRendererOptions {
  templatesDir?: string
  /** Read templates again on every render (development); default: once, then cached. */
  isReloading?: boolean
}

/**
 * Nunjucks, the Jinja2 of JavaScript (same syntax: blocks, inheritance, filters), with
 * autoescape on: `{{ value }}` is always HTML-escaped, so text from users (item names,
 * descriptions) can never become markup. `| safe` is not used anywhere.
 */
export function createPageRenderer(options: PageRendererOptions = {}): PageRenderer {
  const loader = new nunjucks.FileSystemLoader(options.templatesDir ?? TEMPLATES_DIR, {
    noCache: options.isReloading ?? false,
  })
  const environment = new nunjucks.Environment(loader, {
    autoescape: true,
    throwOnUndefined: false,
    trimBlocks: true,
    lstripBlocks: true,
  })
  environment.addFilter('money', (value: unknown) => Number(value).toFixed(2))
  return {
    render: (template, context) => environment.render(template, context),
  }
}
