/**
 * An EventEmitter's `emit`, as the hooks ri puts on a response's `emit` call it.
 *
 * @example
 * const next: EmitFn = res.emit
 */
export type EmitFn = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean

/**
 * Passes an event on to `emit` (called on `self`) with every argument a hook was given: `args` is
 * the hook's own `arguments`. ri hears a response's 'close' through a hook on its `emit` instead
 * of a listener per response (a listener's call at emit time goes through `Reflect.apply`); every
 * such hook ends here. The usual events carry no argument or one and go as a plain call; more go
 * through `apply`.
 *
 * @example
 * res.emit = function (this: ServerResponse, event: string | symbol) {
 *   if (event === 'close') done(this)
 *   return forwardEmit(next, this, arguments)
 * }
 */
export function forwardEmit(emit: EmitFn, self: unknown, args: IArguments): boolean {
  const n = args.length
  return n <= 1 ? emit.call(self, args[0]) : n === 2 ? emit.call(self, args[0], args[1]) : emit.apply(self, args as unknown as [string])
}
