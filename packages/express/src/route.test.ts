import express5 from 'express'
import express4 from 'express4'
import { describe, expect, it } from 'vitest'
import { createRouteResolver } from './route.js'

const noop = (_req: unknown, res: { end: () => void }) => res.end()

for (const [name, express] of [
  ['express 5', express5],
  ['express 4', express4 as unknown as typeof express5],
] as const) {
  describe(`route template resolution (${name})`, () => {
    const build = () => {
      const app = express()
      app.use((_req, _res, next) => next())
      app.get('/users/:id', noop)
      app.post('/users', noop)
      app.all('/any', noop)
      const api = express.Router()
      api.get('/items/:itemId', noop)
      const v1 = express.Router()
      v1.get('/ping', noop)
      api.use('/v1', v1)
      app.use('/api', api)
      const org = express.Router({ mergeParams: true })
      org.get('/members/:member', noop)
      app.use('/orgs/:org', org)
      return app
    }

    it('resolves templates, recursing into mounted routers with their prefix', () => {
      const app = build()
      const resolve = createRouteResolver()
      expect(resolve(app, 'GET', '/users/42')?.template).toBe('/users/:id')
      expect(resolve(app, 'POST', '/users')?.template).toBe('/users')
      expect(resolve(app, 'DELETE', '/any')?.template).toBe('/any')
      expect(resolve(app, 'GET', '/api/items/9')?.template).toBe('/api/items/:itemId')
      expect(resolve(app, 'GET', '/api/v1/ping')?.template).toBe('/api/v1/ping')
      expect(resolve(app, 'GET', '/orgs/acme/members/7')?.template).toBe('/orgs/:org/members/:member')
    })

    it('HEAD follows GET; other methods and unknown paths stay undefined', () => {
      const app = build()
      const resolve = createRouteResolver()
      expect(resolve(app, 'HEAD', '/users/1')?.template).toBe('/users/:id')
      expect(resolve(app, 'PUT', '/users/1')?.template).toBeUndefined()
      expect(resolve(app, 'GET', '/nope')?.template).toBeUndefined()
      expect(resolve(app, 'GET', '/users/%FF')?.template).toSatisfy((v) => v === undefined || v === '/users/:id')
    })

    it('sees routes added after the first resolution', () => {
      const app = build()
      const resolve = createRouteResolver()
      expect(resolve(app, 'GET', '/late')?.template).toBeUndefined()
      app.get('/late', noop)
      expect(resolve(app, 'GET', '/late')?.template).toBe('/late')
    })

    it('keeps its cache bounded', () => {
      const app = build()
      const resolve = createRouteResolver()
      for (let i = 0; i < 5000; i++) resolve(app, 'GET', `/users/${i}`)
      expect(resolve(app, 'GET', '/users/abc')?.template).toBe('/users/:id')
    })
  })
}
