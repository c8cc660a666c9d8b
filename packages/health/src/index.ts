export { createHealth, type Health } from './health.js'
export { type HealthOptions, type ShutdownOptions, DEFAULTS, underKubernetes } from './options.js'
export type { AttachableServer, ShutdownHook, ShutdownHookOptions } from './shutdown.js'
export {
  redisCheck,
  pgCheck,
  dbRouterCheck,
  eventLoopCheck,
  memoryCheck,
  diskCheck,
  type BuiltinCheckOptions,
  type RedisLike,
  type PgQueryable,
  type DbRouterStatusSource,
  type DbRouterStatus,
  type DbNodeStatus,
  type DbRouterCheckOptions,
  type EventLoopCheckOptions,
  type MemoryCheckOptions,
  type DiskCheckOptions,
} from './checks/builtin.js'
export type {
  HealthStatus,
  HealthState,
  CheckResult,
  CheckFn,
  CheckSettings,
  HealthCheck,
  HealthChecksRecord,
  CheckEntry,
  HealthReport,
  HealthBody,
  TerminusBody,
  DetailsPolicy,
  HookOutcome,
  ShutdownResult,
} from './types.js'
