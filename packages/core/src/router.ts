import { Bag } from './exchange.js'

/**
 * A small method + template router (`/users/:id`, `/files/*`) for plain node:http servers and
 * tests. Framework adapters use their framework's router instead.
 */
export interface RouteMatch<T> {
  /** The template that matched, e.g. `/users/:id`: use it for labels and per-route rules. */
  readonly route: string
  readonly params: Record<string, string>
  readonly value: T
}

interface CompiledRoute<T> {
  readonly method: string
  readonly template: string
  readonly re: RegExp
  readonly names: readonly string[]
  readonly value: T
}

export interface Router<T> {
  add(method: string, template: string, value: T): Router<T>
  match(method: string, path: string): RouteMatch<T> | undefined
}

/**
 * @example
 * const router = createRouter<Handler>().add('GET', '/users/:id', getUser)
 * router.match('GET', '/users/42') // { route: '/users/:id', params: { id: '42' }, value: getUser }
 */
export function createRouter<T>(): Router<T> {
  // Static routes by method, then path: a lookup per request without building a combined key.
  const statics = new Map<string, Map<string, RouteMatch<T>>>()
  const dynamic: CompiledRoute<T>[] = []
  const router: Router<T> = {
    add(method, template, value) {
      if (!template.startsWith('/')) throw new TypeError(`Route template must start with "/": ${template}`)
      const m = method.toUpperCase()
      if (!template.includes(':') && !template.includes('*')) {
        let byPath = statics.get(m)
        if (byPath === undefined) statics.set(m, (byPath = new Map()))
        byPath.set(template, { route: template, params: Object.freeze({}) as Record<string, string>, value })
        return router
      }
      const names: string[] = []
      const pattern = template
        .split('/')
        .map((seg) => {
          if (seg === '*') {
            names.push('*')
            return '(.*)'
          }
          if (seg.startsWith(':')) {
            names.push(seg.slice(1))
            return '([^/]+)'
          }
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        })
        .join('/')
      dynamic.push({ method: m, template, re: new RegExp(`^${pattern}/?$`), names, value })
      return router
    },
    match(method, path) {
      const m = upper(method)
      const hit = statics.get(m)?.get(path) ?? (m === 'HEAD' ? statics.get('GET')?.get(path) : undefined)
      if (hit) return hit
      for (const r of dynamic) {
        if (r.method !== m && !(m === 'HEAD' && r.method === 'GET') && r.method !== '*') continue
        const found = r.re.exec(path)
        if (!found) continue
        // No inherited keys, yet a fast-mode object (Object.create(null) starts as a dictionary).
        const params: Record<string, string> = new Bag()
        const names = r.names
        for (let i = 0; i < names.length; i++) params[names[i]!] = safeDecode(found[i + 1] ?? '')
        return { route: r.template, params, value: r.value }
      }
      return undefined
    },
  }
  return router
}

// Node hands standard methods over in upper case already: no new string per request for them.
const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
function upper(method: string): string {
  return STANDARD_METHODS.has(method) ? method : method.toUpperCase()
}

function safeDecode(s: string): string {
  if (s.indexOf('%') === -1) return s
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}
