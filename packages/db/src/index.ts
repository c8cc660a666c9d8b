/**
 * @ri/db: read/write routing for PostgreSQL with LSN-exact read-your-writes, replica health and
 * lag awareness, and a generic node interface.
 */
export {
  createDbRouter,
  type DbRouter,
  type DbRouterOptions,
  type DbQueryable,
  type DbStrategy,
  type DbStatus,
  type DbNodeStatus,
  type DbReplicaStatus,
  type DbReadiness,
  type ReadYourWritesMode,
  type ReadYourWritesOptions,
  type ReplicaInput,
  type HealthCheckOptions,
  type TransactionOptions,
  type ConsistencyState,
} from './router.js'
export { pgNode, type DbNode, type DbSession, type PgNodeOptions, type PgPoolLike, type PgPoolClientLike, type PgResult } from './node.js'
export {
  createClassifier,
  type Classification,
  type ClassifierOptions,
  type StatementKind,
  type StatementReason,
  type StatementTarget,
} from './classify.js'
export type { DbFeatureOptions } from './feature.js'
export { parseLsn, formatLsn } from './lsn.js'
