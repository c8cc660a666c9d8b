import { AsyncLocalStorage } from 'node:async_hooks'
import { type Context, type ContextManager, context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api'

/**
 * A minimal AsyncLocalStorage context manager for tests (what @opentelemetry/context-async-hooks
 * provides in production), so `context.with` really makes a span active across awaits.
 */
export function registerTestContextManager(): () => void {
  const als = new AsyncLocalStorage<Context>()
  const manager: ContextManager = {
    active: () => als.getStore() ?? ROOT_CONTEXT,
    with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.call(thisArg, ...args)),
    bind: (_ctx, target) => target,
    enable() {
      return manager
    },
    disable() {
      als.disable()
      return manager
    },
  }
  if (!context.setGlobalContextManager(manager)) throw new Error('a global OpenTelemetry context manager is already registered')
  return () => context.disable()
}

/** A context whose active span has the given ids (a non-recording span, as a propagated parent). */
export function contextWithSpan(traceId: string, spanId: string): Context {
  return trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }))
}
