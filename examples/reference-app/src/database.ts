import { createDbRouter, type DbRouter, pgNode } from '@ri/db'
import type { Logger, RiEvents } from '@ri/core'
import pg from 'pg'
import type { AppConfig } from './config.js'
import { pgliteNode } from './pglite-node.js'

export const CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'music', 'sports', 'tools', 'toys'] as const
export const PRODUCT_COUNT = 500

/** Idempotent: creates the tables and, when they are empty, deterministic sample data. */
export function schemaAndSeed(orders: number): string {
  const categories = CATEGORIES.map((c) => `'${c}'`).join(',')
  return `
CREATE TABLE IF NOT EXISTS products (
  id integer PRIMARY KEY,
  name text NOT NULL,
  category text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents > 0),
  stock integer NOT NULL CHECK (stock >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY,
  product_id integer NOT NULL REFERENCES products (id),
  quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
  price_cents integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_created_at ON orders (created_at);
INSERT INTO products (id, name, category, price_cents, stock)
  SELECT i, 'Product ' || i, (ARRAY[${categories}])[1 + i % ${CATEGORIES.length}], 199 + (i * 7919) % 20000, 1000 + (i * 31) % 500
  FROM generate_series(1, ${PRODUCT_COUNT}) AS i
  WHERE NOT EXISTS (SELECT 1 FROM products);
INSERT INTO orders (product_id, quantity, price_cents, created_at)
  SELECT p.id, 1 + (g * 13) % 5, p.price_cents, now() - ((g * 7919) % (90 * 24 * 60)) * interval '1 minute'
  FROM generate_series(1, ${Math.max(0, Math.floor(orders))}) AS g JOIN products p ON p.id = 1 + (g * 104729) % ${PRODUCT_COUNT}
  WHERE NOT EXISTS (SELECT 1 FROM orders);
ANALYZE products;
ANALYZE orders;`
}

export interface Database {
  readonly db: DbRouter
  /** `'pglite'` (embedded) or `'postgres'`. */
  readonly kind: 'pglite' | 'postgres'
  readonly replicas: number
}

/**
 * The read/write router: PGlite in-process when `DATABASE_URL` is unset, else a `pg.Pool` primary
 * and one pool per `DATABASE_REPLICA_URLS` entry. Creates and seeds the schema on the primary.
 */
export async function openDatabase(config: AppConfig, deps: { events: RiEvents; logger: Logger }): Promise<Database> {
  const seed = schemaAndSeed(config.seedOrders)
  if (!config.databaseUrl) {
    const node = await pgliteNode({ name: 'pglite' })
    await node.exec(seed)
    const db = createDbRouter({ primary: node, events: deps.events, logger: deps.logger })
    return { db, kind: 'pglite', replicas: 0 }
  }
  const pool = (url: string) => new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 })
  const primary = pool(config.databaseUrl)
  // One multi-statement script on one connection, under a lock so two instances starting together seed once.
  await primary.query(`SELECT pg_advisory_lock(4242); ${seed} SELECT pg_advisory_unlock(4242);`)
  const db = createDbRouter({
    primary: pgNode(primary, { name: 'primary' }),
    replicas: config.replicaUrls.map((url, i) => pgNode(pool(url), { name: `replica${i + 1}` })),
    maxLagMs: '5s',
    events: deps.events,
    logger: deps.logger,
  })
  await db.ready()
  return { db, kind: 'postgres', replicas: config.replicaUrls.length }
}
