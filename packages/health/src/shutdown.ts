import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { type Duration, type EmitFn, ErrorCodes, forwardEmit, type Logger, parseDuration, RiConfigError, RiTimeoutError } from '@ri/core'
import type { NormalizedOptions } from './options.js'
import type { HookOutcome, ShutdownResult } from './types.js'

/**
 * A server `attach()` accepts: node:http or node:https (what every adapter has underneath).
 *
 * @example
 * health.attach(app.listen(3000)) // Express returns its http.Server
 */
export type AttachableServer = HttpServer | HttpsServer

/**
 * A cleanup hook: close a pool, flush a queue. Receives a signal that aborts at its timeout.
 *
 * @example
 * const hook: ShutdownHook = (signal) => queue.flush({ signal })
 */
export type ShutdownHook = (signal: AbortSignal) => unknown

/**
 * Options of `onShutdown`.
 *
 * @example
 * health.onShutdown('pg', () => pool.end(), { timeoutMs: '3s' })
 */
export interface ShutdownHookOptions {
  /** Longest this hook may run. Default: `shutdown.hookTimeoutMs` (5 s). */
  timeoutMs?: Duration
}

interface Hook {
  readonly name: string
  readonly fn: ShutdownHook
  readonly timeoutMs: number
}

interface Tracked {
  readonly server: AttachableServer
  /** Calls `fn` on every response of this server still in flight. */
  eachResponse(fn: (res: ServerResponse) => void): void
  readonly sockets: Set<Socket>
  detach(): void
}

export interface ShutdownCoordinator {
  readonly started: boolean
  /** Requests in flight on attached servers. */
  readonly inFlight: number
  attach(server: AttachableServer): () => void
  onShutdown(name: string, fn: ShutdownHook, options?: ShutdownHookOptions): () => void
  shutdown(reason?: string): Promise<ShutdownResult>
  installSignals(): void
  removeSignals(): void
}

export interface ShutdownContext {
  readonly options: NormalizedOptions
  readonly logger: Logger
  /** Readiness flips to 503 here, before anything else happens. */
  onDraining(): void
  onStopped(): void
}

export function createShutdown(ctx: ShutdownContext): ShutdownCoordinator {
  const { options, logger } = ctx
  const hooks: Hook[] = []
  const tracked = new Set<Tracked>()
  let inFlight = 0
  let draining = false
  let closing = false
  let running: Promise<ShutdownResult> | undefined
  let installed = false

  const markClose = (res: ServerResponse) => {
    // Tells a keep-alive client to open a new connection (to another instance) next time.
    if (!res.headersSent) res.setHeader('connection', 'close')
    res.shouldKeepAlive = false
  }

  const attach = (server: AttachableServer): (() => void) => {
    if (!server || typeof server.prependListener !== 'function' || typeof server.close !== 'function') {
      throw new RiConfigError({ option: 'health.attach(server)', received: server, accepted: 'a node:http or node:https Server' })
    }
    // In-flight responses, and each response's 'close' heard through an emit of its own instead of
    // a listener per response (whose call at emit time goes through Reflect.apply). A Set, not a
    // list linked through the entries: a promoted entry would keep young ones alive past scavenges.
    const responses = new Set<ServerResponse>()
    const sockets = new Set<Socket>()
    // 'close' follows 'finish' on a completed response and is the only event of an aborted one.
    const closed = (res: ServerResponse) => {
      if (!responses.delete(res)) return
      inFlight--
      // A response whose head went out before draining kept its socket alive: close it once idle.
      if (closing) setImmediate(() => server.closeIdleConnections?.())
    }
    // The emit it calls on is its prototype's, looked up at each event: Express sets the response's
    // prototype after this listener ran, and ri hooks emit on that prototype. One function for
    // every response: no closure per request.
    const trackedEmit = function (this: ServerResponse, event: string | symbol): boolean {
      if (event === 'close') closed(this)
      return forwardEmit((Object.getPrototypeOf(this) as ServerResponse).emit as EmitFn, this, arguments)
    } as ServerResponse['emit']
    const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
      inFlight++
      responses.add(res)
      if (!Object.hasOwn(res, 'emit')) res.emit = trackedEmit
      else {
        // An emit of the response's own from before (another health attached to this server): chained.
        const own = res.emit as EmitFn
        res.emit = function (this: ServerResponse, event: string | symbol): boolean {
          if (event === 'close') closed(this)
          return forwardEmit(own, this, arguments)
        } as ServerResponse['emit']
      }
      if (draining) markClose(res)
    }
    const onConnection = (socket: Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    }
    server.prependListener('request', onRequest)
    server.on('connection', onConnection)
    const entry: Tracked = {
      server,
      eachResponse(fn) {
        for (const res of responses) fn(res)
      },
      sockets,
      detach() {
        server.removeListener('request', onRequest)
        server.removeListener('connection', onConnection)
        tracked.delete(entry)
      },
    }
    tracked.add(entry)
    return entry.detach
  }

  const onShutdown = (name: string, fn: ShutdownHook, hookOptions: ShutdownHookOptions = {}): (() => void) => {
    if (typeof name !== 'string' || name === '') throw new RiConfigError({ option: 'onShutdown.name', received: name, accepted: 'a non-empty string' })
    if (typeof fn !== 'function') throw new RiConfigError({ option: 'onShutdown.fn', received: fn, accepted: 'a function (signal) => Promise' })
    const timeoutMs = hookOptions.timeoutMs === undefined ? options.hookTimeoutMs : parseDuration(hookOptions.timeoutMs, 'onShutdown.timeoutMs')
    const hook: Hook = { name, fn, timeoutMs: Math.max(1, timeoutMs) }
    hooks.push(hook)
    return () => {
      const i = hooks.indexOf(hook)
      if (i !== -1) hooks.splice(i, 1)
    }
  }

  const closeServer = (t: Tracked) =>
    new Promise<void>((resolve) => {
      t.eachResponse(markClose)
      // Stops accepting; on Node >= 19 it also closes idle keep-alive sockets.
      t.server.close(() => resolve())
      t.server.closeIdleConnections?.()
    })

  const runHook = async (hook: Hook): Promise<HookOutcome> => {
    const started = performance.now()
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        Promise.resolve().then(() => hook.fn(controller.signal)),
        new Promise((_, reject) => {
          // Not unref'd: a hanging hook must still end in a timeout, not a silent early exit.
          timer = setTimeout(() => reject(new RiTimeoutError(`Shutdown hook "${hook.name}"`, hook.timeoutMs, ErrorCodes.RI_SHUTDOWN_TIMEOUT)), hook.timeoutMs)
        }),
      ])
      return { name: hook.name, outcome: 'ok', durationMs: performance.now() - started }
    } catch (error) {
      const timedOut = error instanceof RiTimeoutError && error.code === ErrorCodes.RI_SHUTDOWN_TIMEOUT
      if (timedOut) controller.abort(error)
      logger.warn({ err: error, hook: hook.name }, timedOut ? `shutdown hook "${hook.name}" timed out after ${hook.timeoutMs} ms` : `shutdown hook "${hook.name}" failed`)
      return { name: hook.name, outcome: timedOut ? 'timeout' : 'error', durationMs: performance.now() - started, error }
    } finally {
      clearTimeout(timer)
    }
  }

  const run = async (reason: string): Promise<ShutdownResult> => {
    const started = performance.now()
    draining = true
    ctx.onDraining()
    for (const t of tracked) t.eachResponse(markClose)
    logger.info({ reason, drainDelayMs: options.drainDelayMs, inFlight }, 'shutting down: readiness fails from now on')
    // Timers below are ref'd on purpose: the shutdown must finish even when nothing else keeps the loop alive.
    if (options.drainDelayMs > 0) await new Promise((r) => setTimeout(r, options.drainDelayMs))

    closing = true
    let timedOut = false
    const servers = [...tracked]
    if (servers.length > 0) {
      let timer: NodeJS.Timeout | undefined
      const allClosed = Promise.all(servers.map(closeServer)).then(() => true)
      const deadline = new Promise<false>((r) => {
        timer = setTimeout(() => r(false), options.shutdownTimeoutMs)
      })
      timedOut = !(await Promise.race([allClosed, deadline]))
      clearTimeout(timer)
      if (timedOut) {
        logger.warn({ inFlight, timeoutMs: options.shutdownTimeoutMs }, 'shutdown timeout: destroying remaining connections')
        for (const t of servers) {
          t.server.closeAllConnections?.()
          for (const socket of t.sockets) socket.destroy()
        }
      }
    }

    const outcomes: HookOutcome[] = []
    for (const hook of [...hooks].reverse()) outcomes.push(await runHook(hook))
    const code: 0 | 1 = timedOut || outcomes.some((o) => o.outcome !== 'ok') ? 1 : 0
    const result: ShutdownResult = Object.freeze({ code, reason, timedOut, durationMs: performance.now() - started, hooks: Object.freeze(outcomes) })
    ctx.onStopped()
    logger.info({ reason, code, timedOut, durationMs: Math.round(result.durationMs) }, 'shutdown complete')
    removeSignals()
    if (options.exit) {
      try {
        options.exit(code)
      } catch (error) {
        logger.error({ err: error }, 'shutdown exit function threw')
      }
    }
    return result
  }

  const shutdown = (reason = 'shutdown()'): Promise<ShutdownResult> => {
    if (running) return running
    running = run(reason).catch((error: unknown) => {
      // run() catches everything it awaits; this is a last line of defence.
      logger.error({ err: error }, 'shutdown failed')
      const result: ShutdownResult = { code: 1, reason, timedOut: false, durationMs: 0, hooks: [] }
      if (options.exit) options.exit(1)
      return result
    })
    return running
  }

  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      logger.warn({ signal }, `${signal} received while already shutting down; ignored`)
      return
    }
    void shutdown(signal)
  }

  function removeSignals() {
    if (!installed) return
    installed = false
    for (const signal of options.signals) process.removeListener(signal, onSignal)
  }

  return {
    get started() {
      return running !== undefined
    },
    get inFlight() {
      return inFlight
    },
    attach,
    onShutdown,
    shutdown,
    installSignals() {
      if (installed) return
      installed = true
      for (const signal of options.signals) process.on(signal, onSignal)
    },
    removeSignals,
  }
}
