/**
 * Route template resolution for Express before routing runs. Express only knows the matched route
 * (`req.route`) inside the route's own handlers, too late for throttle rules and the response
 * cache, so the app's router layers are matched here the way Express will match them.
 */

interface MatchV5 {
  readonly path: string
  readonly params: Record<string, string>
  readonly pattern?: unknown
}

export interface RouteLike {
  readonly path: unknown
  readonly stack?: unknown
  _handlesMethod?(method: string): boolean
  _handles_method?(method: string): boolean
}

interface LayerLike {
  readonly route?: RouteLike
  readonly handle?: { readonly stack?: unknown }
  readonly keys?: ReadonlyArray<{ readonly name: string | number }>
  readonly path?: string
  readonly params?: Record<string, string>
  match(path: string): boolean | MatchV5 | false
}

interface AppLike {
  readonly router?: { readonly stack?: unknown }
  readonly _router?: { readonly stack?: unknown }
}

const MAX_DEPTH = 8
const CACHE_SIZE = 1000

export function joinRoute(prefix: string, path: string): string {
  if (prefix === '' || prefix === '/') return path
  if (path === '/' || path === '') return prefix
  return prefix.endsWith('/') ? prefix + path.slice(1) : prefix + path
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Express 4 keeps no mount template: rebuild it from the matched prefix and its params. */
function templatize(matched: string, params: Record<string, string> | undefined, keys: LayerLike['keys']): string {
  if (!keys || keys.length === 0 || !params) return matched
  const byValue = new Map<string, string>()
  for (const k of keys) {
    const v = params[String(k.name)]
    if (v !== undefined && !byValue.has(v)) byValue.set(v, `:${String(k.name)}`)
  }
  return matched
    .split('/')
    .map((seg) => byValue.get(safeDecode(seg)) ?? seg)
    .join('/')
}

function stackOf(app: AppLike): LayerLike[] | undefined {
  // express 5: `app.router`; express 4: `app._router` (created by the first app.use/route call)
  // `_router` first: express 4's `app.router` getter throws.
  const router = app._router ?? app.router
  const stack = router?.stack
  return Array.isArray(stack) ? (stack as LayerLike[]) : undefined
}

/** A resolved route: its template and the Express route object (its stack holds the route's middleware). */
export interface Resolved {
  readonly template: string
  readonly route: RouteLike
}

function resolveIn(stack: readonly LayerLike[], method: string, path: string, prefix: string, depth: number): Resolved | undefined {
  for (const layer of stack) {
    let m: boolean | MatchV5 | false
    try {
      m = layer.match(path)
    } catch {
      continue // undecodable path: Express answers 400 itself
    }
    if (!m) continue
    const v5 = typeof m === 'object' ? m : undefined
    const matched = v5 ? v5.path : (layer.path ?? '')
    const pattern = v5 ? v5.pattern : undefined
    const route = layer.route
    if (route) {
      const handles = route._handlesMethod ? route._handlesMethod(method) : (route._handles_method?.(method) ?? false)
      if (!handles && method !== 'HEAD') continue
      const tpl = typeof pattern === 'string' ? pattern : typeof route.path === 'string' ? route.path : String(pattern ?? route.path)
      return { template: joinRoute(prefix, tpl), route }
    }
    const sub = layer.handle?.stack
    if (Array.isArray(sub) && depth < MAX_DEPTH) {
      const rest = path.slice(matched.length) || '/'
      const mount = typeof pattern === 'string' ? (pattern === '/' ? '' : pattern) : templatize(matched, v5 ? v5.params : layer.params, layer.keys)
      const found = resolveIn(sub as LayerLike[], method, rest.startsWith('/') ? rest : `/${rest}`, joinRoute(prefix, mount), depth + 1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

export type RouteResolver = (app: unknown, method: string, path: string) => Resolved | undefined

/**
 * One resolver per `ri()` middleware: resolutions are cached per app, method and path in a
 * bounded map, dropped whenever the app's root stack changes size (routes added late).
 */
export function createRouteResolver(): RouteResolver {
  const perApp = new WeakMap<object, { size: number; cache: Map<string, Resolved | null> }>()
  return (app, method, path) => {
    if (typeof app !== 'function' && (typeof app !== 'object' || app === null)) return undefined
    const stack = stackOf(app as AppLike)
    if (!stack) return undefined
    let entry = perApp.get(app)
    if (!entry || entry.size !== stack.length) {
      entry = { size: stack.length, cache: new Map() }
      perApp.set(app, entry)
    }
    const key = `${method} ${path}`
    const hit = entry.cache.get(key)
    if (hit !== undefined) return hit ?? undefined
    const found = resolveIn(stack, method, path, '', 0)
    if (entry.cache.size >= CACHE_SIZE) entry.cache.delete(entry.cache.keys().next().value as string)
    entry.cache.set(key, found ?? null)
    return found
  }
}
