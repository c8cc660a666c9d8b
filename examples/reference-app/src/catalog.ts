/** Sample data the embedded default serves until the database-backed version lands. */
export interface Product {
  readonly id: number
  readonly name: string
  readonly category: string
  readonly priceCents: number
  readonly stock: number
}

export interface Order {
  readonly id: number
  readonly productId: number
  readonly quantity: number
  readonly createdAt: string
}

const CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'music', 'tools'] as const

export function createCatalog(size = 500) {
  const products: Product[] = Array.from({ length: size }, (_, i) => ({
    id: i + 1,
    name: `Product ${i + 1}`,
    category: CATEGORIES[i % CATEGORIES.length]!,
    priceCents: 199 + ((i * 7919) % 20_000),
    stock: (i * 31) % 120,
  }))
  const orders: Order[] = []
  return {
    products,
    orders,
    find: (id: number) => products[id - 1],
    page(offset: number, limit: number) {
      return products.slice(offset, offset + limit)
    },
    order(productId: number, quantity: number): Order {
      const order = { id: orders.length + 1, productId, quantity, createdAt: new Date().toISOString() }
      orders.push(order)
      return order
    },
    /** A deliberately heavy aggregate, the kind of query analytics dashboards run. */
    revenueByCategory() {
      const totals: Record<string, { orders: number; revenueCents: number }> = Object.create(null)
      for (const c of CATEGORIES) totals[c] = { orders: 0, revenueCents: 0 }
      for (const o of orders) {
        const p = products[o.productId - 1]!
        const t = totals[p.category]!
        t.orders++
        t.revenueCents += p.priceCents * o.quantity
      }
      return totals
    },
  }
}

export type Catalog = ReturnType<typeof createCatalog>
