export {
  createThrottle,
  skipThrottle,
  type Throttle,
  type ThrottleResult,
  type LimitResult,
  type ThrottleQueue,
  type QueueOptions,
} from './throttle.js'
export { throttled, type ThrottledOptions } from './throttled.js'
export type {
  ThrottleOptions,
  ThrottleStore,
  RuleOptions,
  LimitOptions,
  InsuranceOptions,
  RedisClientLike,
} from './options.js'
export type { KeySpec, KeyPart } from './keys.js'
export type { HeadersMode } from './headers.js'
export type { StoreKind } from './engine.js'
export { selectThrottled, type ThrottledSelection, type ThrottleDeps } from './select.js'
