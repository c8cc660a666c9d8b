import type { DbRouter } from '@ri/db'

export interface Product {
  id: number
  name: string
  category: string
  priceCents: number
  stock: number
  updatedAt: string
}

export interface Order {
  id: number
  productId: number
  quantity: number
  priceCents: number
  createdAt: string
}

export interface RevenueReport {
  days: number
  categories: Record<string, { orders: number; units: number; revenueCents: number }>
  daily: Array<{ day: string; category: string; orders: number; revenueCents: number }>
}

const PRODUCT_COLUMNS = `id, name, category, price_cents AS "priceCents", stock, updated_at::text AS "updatedAt"`

/**
 * The app's queries. Everything goes through `db.query()`: @ri/db sends reads to a replica (one
 * that has replayed this client's last write, when the request carries its cookie) and writes to
 * the primary.
 */
export function createStore(db: DbRouter) {
  return {
    async listProducts(limit: number, offset: number): Promise<Product[]> {
      const { rows } = await db.query(`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY id LIMIT $1 OFFSET $2`, [limit, offset])
      return rows as Product[]
    },

    async countProducts(): Promise<number> {
      const { rows } = await db.query('SELECT count(*)::int AS n FROM products')
      return (rows[0] as { n: number }).n
    },

    async getProduct(id: number): Promise<Product | undefined> {
      const { rows } = await db.query(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = $1`, [id])
      return rows[0] as Product | undefined
    },

    async setPrice(id: number, priceCents: number): Promise<Product | undefined> {
      const { rows } = await db.query(`UPDATE products SET price_cents = $2, updated_at = now() WHERE id = $1 RETURNING ${PRODUCT_COLUMNS}`, [id, priceCents])
      return rows[0] as Product | undefined
    },

    /** One statement (a data-modifying CTE): the stock check, the decrement and the order insert are atomic. */
    async createOrder(productId: number, quantity: number): Promise<Order | undefined> {
      const { rows } = await db.query(
        `WITH p AS (UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING id, price_cents)
         INSERT INTO orders (product_id, quantity, price_cents) SELECT id, $2, price_cents FROM p
         RETURNING id::int, product_id AS "productId", quantity, price_cents AS "priceCents", created_at::text AS "createdAt"`,
        [productId, quantity],
      )
      return rows[0] as Order | undefined
    },

    /** The dashboard query: revenue per category and day, a join and a GROUP BY over every order in the window. */
    async revenue(days: number): Promise<RevenueReport> {
      const { rows } = await db.query(
        `SELECT p.category, to_char(date_trunc('day', o.created_at), 'YYYY-MM-DD') AS day, count(*)::int AS orders,
                sum(o.quantity)::int AS units, sum(o.quantity::bigint * o.price_cents)::float8 AS "revenueCents"
         FROM orders o JOIN products p ON p.id = o.product_id
         WHERE o.created_at >= now() - make_interval(days => $1)
         GROUP BY 1, 2 ORDER BY 2, 1`,
        [days],
      )
      const categories: RevenueReport['categories'] = Object.create(null)
      const daily: RevenueReport['daily'] = []
      for (const r of rows as Array<{ category: string; day: string; orders: number; units: number; revenueCents: number }>) {
        const c = (categories[r.category] ??= { orders: 0, units: 0, revenueCents: 0 })
        c.orders += r.orders
        c.units += r.units
        c.revenueCents += r.revenueCents
        daily.push({ day: r.day, category: r.category, orders: r.orders, revenueCents: r.revenueCents })
      }
      return { days, categories, daily }
    },
  }
}

export type Store = ReturnType<typeof createStore>
