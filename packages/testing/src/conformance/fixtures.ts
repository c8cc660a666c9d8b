import type {
  AnswerLike,
  ConformanceRoute,
  DurationLike,
  EventsLike,
  ExchangeLike,
  FeatureLike,
  FinishInfoLike,
  HttpRequestEvent,
} from './types.js'

/** What the suite observed on the server side of one request, keyed by request id. */
export interface Observation {
  route: string | undefined
  /** Route template as the global features saw it in onRequest, before the handler. */
  routeAtRequest: string | undefined
  ip: string
  status?: number
  aborted?: boolean
  /** Body bytes the route-level onSend feature saw. */
  routeBody?: Buffer
  /** Body bytes the global onSend feature saw (second server only). */
  globalBody?: Buffer
  /** `ex.status` and the handler's content-type as the route-level onSend feature saw them. */
  sendStatus?: number
  sendContentType?: string | string[]
}

/** Server-side recordings shared by the features, the handlers and the assertions. */
export interface Probe {
  readonly seen: Map<string, Observation>
  readonly events: HttpRequestEvent[]
  /** Handler invocations per route template. */
  readonly handled: Record<string, number>
  readonly bus: EventsLike
}

/** A minimal event bus with core's `RiEvents` shape (the suite does not depend on @ri/core). */
function createBus(): EventsLike {
  const listeners = new Map<string, Array<(payload: never) => void>>()
  const off = (type: string, listener: (payload: never) => void) => {
    const next = (listeners.get(type) ?? []).filter((l) => l !== listener)
    if (next.length === 0) listeners.delete(type)
    else listeners.set(type, next)
  }
  return {
    on(type, listener) {
      listeners.set(type, [...(listeners.get(type) ?? []), listener])
      return () => off(type, listener)
    },
    off,
    emit(type, payload) {
      for (const l of listeners.get(type) ?? []) l(payload as never)
    },
    has: (type) => listeners.has(type),
  }
}

export function createProbe(): Probe {
  const probe: Probe = { seen: new Map(), events: [], handled: Object.create(null) as Record<string, number>, bus: createBus() }
  probe.bus.on('http.request', ((e: HttpRequestEvent) => {
    probe.events.push(e)
  }) as (payload: never) => void)
  return probe
}

const observe = (probe: Probe, ex: ExchangeLike): Observation => {
  let o = probe.seen.get(ex.requestId)
  if (!o) {
    o = { route: ex.route, routeAtRequest: ex.route, ip: ex.ip }
    probe.seen.set(ex.requestId, o)
  }
  return o
}

const toBuffer = (body: Uint8Array | string) => (typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength))

/**
 * Global test features:
 * - `recorder` notes route template, client ip, final status and abort per request id;
 * - `blocker` answers 429 with rate-limit style headers when the request carries `x-block: 1`;
 * - `stamp` sets `x-ri-stamp: <route template | none>` in `onHeaders`.
 */
export function globalFeatures(probe: Probe, withGlobalSend: boolean): FeatureLike[] {
  const recorder: FeatureLike = {
    name: 'conformance-recorder',
    onRequest(ex) {
      observe(probe, ex)
    },
    onResponse(ex: ExchangeLike, info: FinishInfoLike) {
      const o = observe(probe, ex)
      o.route = ex.route
      o.status = info.status
      o.aborted = info.aborted
    },
  }
  const blocker: FeatureLike = {
    name: 'conformance-blocker',
    onRequest(ex): AnswerLike | undefined {
      if (ex.headers['x-block'] !== '1') return undefined
      return {
        status: 429,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'retry-after': '7',
          'ratelimit-policy': '"conformance";q=1;w=60',
          ratelimit: '"conformance";r=0;t=7',
        },
        body: '{"error":"Too Many Requests"}',
      }
    },
  }
  const stamp: FeatureLike = {
    name: 'conformance-stamp',
    onHeaders(ex) {
      ex.setHeader('x-ri-stamp', ex.route ?? 'none')
    },
  }
  const features = [recorder, blocker, stamp]
  if (withGlobalSend) {
    features.push({
      name: 'conformance-global-send',
      onSend(ex, body) {
        observe(probe, ex).globalBody = toBuffer(body)
        return undefined
      },
    })
  }
  return features
}

/** A 2 KB JSON body with multi-byte UTF-8 characters: onSend must see exactly these bytes. */
export const BYTES_BODY = JSON.stringify({ text: 'ri ✓ café 日本語 🚀 '.repeat(60), n: 42 })

const json = (status: number, value: unknown) => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: JSON.stringify(value),
})

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The one route table every setup serves. */
export function conformanceRoutes(probe: Probe): ConformanceRoute[] {
  const count = (route: string) => {
    probe.handled[route] = (probe.handled[route] ?? 0) + 1
  }
  const routeBlocker: FeatureLike = {
    name: 'conformance-route-blocker',
    onRequest(ex) {
      if (ex.headers['x-block-route'] !== '1') return undefined
      return { status: 418, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-route-answer': ex.route ?? 'none' }, body: 'route answer' }
    },
    onHeaders(ex) {
      ex.setHeader('x-route-headers', '1')
    },
  }
  const routeSend: FeatureLike = {
    name: 'conformance-route-send',
    onSend(ex, body) {
      const o = observe(probe, ex)
      o.routeBody = toBuffer(body)
      o.sendStatus = (ex as ExchangeLike & { status: number }).status
      o.sendContentType = (ex as ExchangeLike & { responseHeaders: Record<string, string | string[]> }).responseHeaders['content-type']
      ex.setHeader('x-from-send', 'feature')
      return ex.headers['x-replace'] === '1' ? 'replaced ✓' : undefined
    },
    onHeaders(ex) {
      ex.setHeader('set-cookie', 'feature=2; Path=/')
    },
    onResponse(ex, info) {
      ex.state['conformance.routeFinished'] = info.status
    },
  }
  return [
    {
      method: 'GET',
      path: '/constant',
      handler: () => {
        count('/constant')
        return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'ok' }
      },
    },
    {
      method: 'GET',
      path: '/users/:id',
      handler: (req) => {
        count('/users/:id')
        return json(200, { id: req.params.id })
      },
    },
    {
      method: 'POST',
      path: '/echo',
      handler: (req) => {
        count('/echo')
        return json(200, { echo: req.body ?? null })
      },
    },
    {
      method: 'GET',
      path: '/slow',
      handler: async (req) => {
        count('/slow')
        await sleep(Number(req.headers['x-delay'] ?? 300))
        return json(200, { slow: true })
      },
    },
    {
      method: 'GET',
      path: '/boom',
      handler: () => {
        count('/boom')
        throw new Error('conformance: handler failure')
      },
    },
    {
      method: 'GET',
      path: '/guarded',
      features: [routeBlocker],
      handler: () => {
        count('/guarded')
        return json(200, { guarded: true })
      },
    },
    {
      method: 'GET',
      path: '/bytes',
      features: [routeSend],
      handler: () => {
        count('/bytes')
        return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'x-from-send': 'handler', 'set-cookie': 'handler=1; Path=/' }, body: BYTES_BODY }
      },
    },
  ]
}

/** Handler calls per route of the feature table (a cache HIT or a 429 never reaches the handler). */
export interface FeatureProbe {
  readonly handled: Record<string, number>
}

export function createFeatureProbe(): FeatureProbe {
  return { handled: Object.create(null) as Record<string, number> }
}

/**
 * The route table of the feature scenarios: each row uses one named route-level option that the
 * setup translates to its adapter's own unit (`cached()`, `config.cache`, `@Cached()` ...).
 */
export function featureRoutes(probe: FeatureProbe): ConformanceRoute[] {
  const count = (route: string) => {
    probe.handled[route] = (probe.handled[route] ?? 0) + 1
    return probe.handled[route]!
  }
  return [
    {
      method: 'GET',
      path: '/items/:id',
      cache: { ttl: '1m', tags: ['items'], vary: ['accept-language'] },
      handler: (req) => json(200, { id: req.params.id, n: count('/items/:id'), text: 'ri ✓ café '.repeat(120) }),
    },
    { method: 'GET', path: '/limited', throttle: { limit: 2, window: '1m' }, handler: () => json(200, { n: count('/limited') }) },
    { method: 'GET', path: '/open', handler: () => json(200, { n: count('/open') }) },
    { method: 'GET', path: '/exempt', skipThrottle: true, handler: () => json(200, { n: count('/exempt') }) },
    { method: 'GET', path: '/counted', handler: () => json(200, { n: count('/counted') }) },
    {
      method: 'GET',
      path: '/slow',
      slowMs: 40,
      handler: async () => {
        count('/slow')
        await sleep(80)
        return json(200, { slow: true })
      },
    },
    { method: 'GET', path: '/fast', handler: () => json(200, { n: count('/fast') }) },
    {
      method: 'GET',
      path: '/work',
      handler: async (req) => {
        count('/work')
        await sleep(Number(req.headers['x-delay'] ?? 40))
        return json(200, { done: true })
      },
    },
  ]
}

/** The global throttle of the feature servers: `/exempt` and `/counted` allow one request a minute. */
export const FEATURE_THROTTLE_RULES: Readonly<Record<string, { limit: number; window: DurationLike }>> = Object.freeze({
  'GET /exempt': { limit: 1, window: '1m' },
  'GET /counted': { limit: 1, window: '1m' },
})
