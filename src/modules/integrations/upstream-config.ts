/** A gateway route: requests under `prefix` go to `upstream` with the prefix cut off. */
export interface GatewayRoute {
  /** e.g. /gw/echo (no trailing slash). */
  prefix: string
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:9000/api. */
  upstream: string
}

/** An upstream the aggregation routes call with GET. */
export interface NamedUpstream {
  name: string
  url: string
}

/** GATEWAY_ROUTES "/gw/echo=http://127.0.0.1:9000,/gw/b=http://b:8000/api" → routes. */
export function parseGatewayRoutes(spec: string): GatewayRoute[] {
  return pairs(spec).map(([prefix, upstream]) => ({
    prefix: prefix.replace(/\/+$/, ''),
    upstream: upstream.replace(/\/+$/, ''),
  }))
}

/** AGGREGATE_UPSTREAMS "a=http://a/stats,b=http://b/stats" → [{ name, url }]. */
export function parseNamedUpstreams(spec: string): NamedUpstream[] {
  return pairs(spec).map(([name, url]) => ({ name, url }))
}

/** "k=v,k2=v2" split on the first "=" of each entry (the config schema has checked the form). */
function pairs(spec: string): Array<[string, string]> {
  return spec
    .split(',')
    .filter((entry) => entry.trim() !== '')
    .map((entry) => {
      const at = entry.indexOf('=')
      return [entry.slice(0, at).trim(), entry.slice(at + 1).trim()]
    })
}
