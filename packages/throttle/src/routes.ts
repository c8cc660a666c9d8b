/**
 * Route patterns for rules: `'GET /products/:id'`, `'/products/:id'` (any method),
 * `'GET,HEAD /files/*'`, `'* /admin/*'`. Patterns match the route TEMPLATE the framework
 * reports (`exchange.route`), never the raw path, so `/products/:id` matches every product.
 * `*` in a path matches any characters (including `/`).
 */
export interface RoutePattern {
  readonly source: string
  /** Upper-case methods, or undefined for any method. */
  readonly methods: ReadonlySet<string> | undefined
  readonly path: string
  readonly wildcard: RegExp | undefined
  /** Higher wins: exact paths beat wildcards, longer literal parts beat shorter, a method beats any. */
  readonly specificity: number
}

const METHOD_LIST_RE = /^(\*|[A-Za-z]+(,[A-Za-z]+)*)$/

/** Parses a pattern, or returns a string saying what is wrong with it. */
export function parseRoutePattern(source: string): RoutePattern | string {
  const text = source.trim()
  const space = text.indexOf(' ')
  let methodPart = '*'
  let path = text
  if (space !== -1) {
    methodPart = text.slice(0, space)
    path = text.slice(space + 1).trim()
  }
  if (!METHOD_LIST_RE.test(methodPart)) return 'a method list such as GET or GET,HEAD or *, then a space and the route template'
  if (!path.startsWith('/') && path !== '*') return "a route template starting with '/' (e.g. '/products/:id') or '*'"
  const methods = methodPart === '*' ? undefined : new Set(methodPart.toUpperCase().split(','))
  const hasStar = path.includes('*')
  const literal = path.replace(/\*/g, '').length
  const wildcard = hasStar ? new RegExp(`^${path.split('*').map(escapeRe).join('.*')}$`) : undefined
  const specificity = (hasStar ? 0 : 100_000) + literal * 2 + (methods ? 1 : 0)
  return { source, methods, path, wildcard, specificity }
}

export function matchesRoute(p: RoutePattern, method: string, route: string): boolean {
  if (p.methods && !p.methods.has(method) && !(method === 'HEAD' && p.methods.has('GET'))) return false
  return p.wildcard ? p.wildcard.test(route) : p.path === route
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Resolves (method, route template) to a value once and remembers it: templates are few, so
 * the request path is two map lookups. Bounded, so an adapter that (wrongly) reports raw
 * paths cannot grow it without limit.
 */
export function createRouteTable<T>(entries: ReadonlyArray<{ pattern: RoutePattern; value: T }>, fallback: T, maxCached = 10_000) {
  const sorted = [...entries].map((e, i) => ({ ...e, i })).sort((a, b) => b.pattern.specificity - a.pattern.specificity || a.i - b.i)
  const cache = new Map<string, Map<string, T>>()
  let cached = 0
  const resolve = (method: string, route: string): T => {
    for (const e of sorted) if (matchesRoute(e.pattern, method, route)) return e.value
    return fallback
  }
  return (method: string, route: string | undefined): T => {
    if (route === undefined) return fallback
    let byMethod = cache.get(route)
    if (byMethod !== undefined) {
      const hit = byMethod.get(method)
      if (hit !== undefined || byMethod.has(method)) return hit as T
    }
    const value = resolve(method, route)
    if (cached < maxCached) {
      if (byMethod === undefined) cache.set(route, (byMethod = new Map()))
      byMethod.set(method, value)
      cached++
    }
    return value
  }
}
