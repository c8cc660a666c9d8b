/**
 * @ri/testing: throwaway real services for integration tests (`*.int.test.ts`).
 *
 * ```ts
 * import { describeWithRedis, startRedis } from '@ri/testing'
 * describeWithRedis('cache', () => {
 *   let redis: RedisServer
 *   beforeAll(async () => { redis = await startRedis() })
 *   afterAll(() => redis.stop())
 * })
 * ```
 * Missing binaries skip (with a printed reason) locally and fail under CI.
 */

export {
  /** Absolute path of a redis/postgres binary from PATH or the highest /usr/lib/postgresql/<v>/bin. */
  findBinary,
  /** Paths of all binaries of a service; throws with an install hint when any is missing. */
  resolveBinaries,
  /** `{ available, missing, install }` for 'redis' | 'postgres'. */
  serviceAvailability,
  /** true if the service can run; else throws under CI, or warns once and returns false. */
  requireService,
  /** vitest `describe` that skips (locally) or fails (CI) when Redis binaries are missing. */
  describeWithRedis,
  /** vitest `describe` that skips (locally) or fails (CI) when PostgreSQL binaries are missing. */
  describeWithPostgres,
  /** Binaries each service needs. */
  SERVICE_BINARIES,
} from './binaries.js'
export type {
  /** 'redis' | 'postgres' */
  ServiceName,
  /** Names of the executables looked up. */
  BinaryName,
  /** Injectable PATH/env and PostgreSQL roots for the lookup. */
  LookupOptions,
  /** Result of serviceAvailability(). */
  ServiceAvailability,
} from './binaries.js'

export {
  /** Start redis-server on 127.0.0.1:<random port> in a temp dir; resolves when it answers PING. */
  startRedis,
} from './redis.js'
export type {
  /** Options of startRedis(). */
  RedisOptions,
  /** Handle of a running Redis: url, stop/kill/restart/pause/resume. */
  RedisServer,
} from './redis.js'

export {
  /** Start a real local Redis Cluster (3 masters by default) on random ports. */
  startRedisCluster,
} from './redis-cluster.js'
export type {
  /** Options of startRedisCluster(). */
  RedisClusterOptions,
  /** `{ nodes, startupNodes, stop(), topology(), masterOf(key), waitUntilOk() }` */
  RedisCluster,
  /** One node's role, slots and failure flag in topology(). */
  ClusterNodeState,
} from './redis-cluster.js'

export {
  /** initdb + start a primary and N streaming replicas (optionally with an apply delay) on random ports. */
  startPostgres,
  /** CREATE DATABASE on a server; returns the new database's URL. */
  createDatabase,
} from './postgres.js'
export type {
  /** Options of startPostgres(). */
  PostgresOptions,
  /** Handle of a primary or replica: url, stop/kill/restart/pause/resume. */
  PgNode,
  /** `{ primary, replicas, dir, stop() }` */
  PostgresCluster,
} from './postgres.js'

export {
  /** A client that goes away mid-body (destroys its connection after the first body chunk). */
  leaveMidBody,
} from './client.js'

export {
  /** A port that is free on 127.0.0.1 right now (listen on 0, then close). */
  getFreePort,
  /** true if the port can be bound now. */
  isPortFree,
  /** Poll until the port can be bound, bounded by a timeout. */
  waitForPortFree,
} from './ports.js'

export {
  /** The shared HTTP conformance suite every adapter runs against a real server. */
  runConformance,
  /** Raw bytes on a fresh socket (malformed input the HTTP client refuses to send). */
  rawRequest,
} from './conformance/suite.js'
export {
  /** The one route table every setup serves. */
  conformanceRoutes,
  /** Server-side recordings of the suite. */
  createProbe,
  /** The suite's global test features. */
  globalFeatures,
  BYTES_BODY,
  type Probe,
  type Observation,
} from './conformance/fixtures.js'
export type * from './conformance/types.js'

export {
  /** Registers an AsyncLocalStorage OpenTelemetry context manager for tests; returns its disposer. */
  registerTestContextManager,
  /** A context whose active span carries the given trace and span ids. */
  contextWithSpan,
} from './otel.js'
