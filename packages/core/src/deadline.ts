/**
 * Timeouts for many in-flight calls that share one budget (Redis commands of a cache or a
 * limiter), without a `setTimeout` per call, and promises settled from outside without a
 * closure per call. Node-free building blocks for feature packages.
 */

/** A call the list times out. `deadline`, `prev` and `next` belong to the list. */
export interface DeadlineEntry {
  /** The list's tick past which the call expires; -1 once it has left the list. */
  deadline: number
  prev: DeadlineEntry | undefined
  next: DeadlineEntry | undefined
  /** Called, already removed from the list, when the call is still in flight at its deadline. */
  expire(): void
}

export interface DeadlineList {
  /** Starts the call's timeout. */
  add(entry: DeadlineEntry): void
  /** The call settled: false when it had already expired or been removed (ignore the outcome then). */
  remove(entry: DeadlineEntry): boolean
  /** True while no call is in flight (the timer is stopped). */
  readonly idle: boolean
}

/**
 * In-flight calls in a doubly linked list in start order, which (one timeout for all) is also
 * deadline order: a settled call leaves in O(1) and is garbage at once (a queue holding settled
 * calls until a sweep got them promoted to the old generation), and one unref'd timer, running only
 * while calls are in flight, expires the overdue ones from the head. Deadlines count the timer's
 * ticks (no clock read per call): calls expire between 1x the timeout and one tick later (a
 * quarter of the timeout, 5-50 ms). `onTick` runs on every tick and when the timer starts.
 *
 * @example
 * const list = createDeadlineList(200)
 * list.add(call) // ... list.remove(call) when it settles; call.expire() runs if it does not in time
 */
export function createDeadlineList(timeoutMs: number, onTick?: () => void): DeadlineList {
  const period = Math.max(5, Math.min(50, Math.floor(timeoutMs / 4)))
  const ticksPerTimeout = Math.ceil(timeoutMs / period)
  let tick = 0
  let head: DeadlineEntry | undefined
  let tail: DeadlineEntry | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  const unlink = (e: DeadlineEntry) => {
    const { prev, next } = e
    if (prev === undefined) head = next
    else prev.next = next
    if (next === undefined) tail = prev
    else next.prev = prev
    e.prev = e.next = undefined
    e.deadline = -1
  }
  const sweep = () => {
    onTick?.()
    tick++
    // expire() may start calls: they are appended at the tail, with later deadlines.
    while (head !== undefined && head.deadline < tick) {
      const e = head
      unlink(e)
      e.expire()
    }
    if (head === undefined && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
  return {
    add(e) {
      if (timer === undefined) {
        onTick?.()
        timer = setInterval(sweep, period)
        ;(timer as { unref?: () => void }).unref?.()
      }
      // Added between tick and tick + 1: expired on the sweep that makes it tick + ticksPerTimeout + 1.
      e.deadline = tick + ticksPerTimeout
      e.next = undefined
      e.prev = tail
      if (tail === undefined) head = e
      else tail.next = e
      tail = e
    },
    remove(e) {
      if (e.deadline < 0) return false
      unlink(e)
      return true
    },
    get idle() {
      return head === undefined
    },
  }
}

/** What `promiseInto` fills in: the settle functions of the promise it returns. */
export interface Settleable<T> {
  resolve: ((value: T | PromiseLike<T>) => void) | undefined
  reject: ((error: unknown) => void) | undefined
}

// The executor runs synchronously inside `new Promise`: it takes its target from here.
let target: Settleable<unknown> | undefined
function takeSettlers(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  target!.resolve = resolve
  target!.reject = reject
}

/**
 * A new promise whose `resolve`/`reject` are stored on `holder` (the call's own record), with no
 * executor closure allocated per call.
 *
 * @example
 * const call = { resolve: undefined, reject: undefined }
 * const p = promiseInto<number>(call) // later: call.resolve!(42)
 */
export function promiseInto<T>(holder: Settleable<T>): Promise<T> {
  target = holder as Settleable<unknown>
  // takeSettlers cannot throw: no try/finally needed to clear `target`.
  const promise = new Promise<T>(takeSettlers as (resolve: (value: T) => void, reject: (error: unknown) => void) => void)
  target = undefined
  return promise
}
