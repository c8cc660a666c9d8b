import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEvents } from '@ri/core'
import type { NodeRoute } from '@ri/core/node'
import { describe, expect, it } from 'vitest'
import { createMetrics } from './index.js'
import { requirePromtool, runPromtool } from './testing/promtool.js'
import { startServer } from './testing/server.js'

const OPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/ops')
const RULES = path.join(OPS, 'prometheus/ri-alerts.yml')
const RULE_TESTS = path.join(OPS, 'prometheus/ri-alerts.test.yml')
const DASHBOARD = path.join(OPS, 'grafana/ri-dashboard.json')
// Gauges prom-client's default process metrics name with `_total`; promtool's linter flags them.
// They are prom-client's names (kept for compatibility with its dashboards), not ours.
const PROM_CLIENT_LINT = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])

const ok: NodeRoute['handler'] = (_req, _res, ctx) => ctx.json(200, { ok: true })

async function liveScrape(defaultMetrics: boolean): Promise<string> {
  const events = createEvents()
  const metrics = createMetrics({ defaultMetrics, sizes: true, events })
  const server = await startServer([metrics.feature()], [
    { method: 'GET', path: '/users/:id', handler: ok },
    { method: 'GET', path: '/fail', handler: (_q, _s, ctx) => ctx.json(500, {}) },
  ])
  try {
    for (const p of ['/users/1', '/users/2', '/fail', '/missing']) await fetch(server.url + p).then((r) => r.text())
    events.emit('cache.get', { namespace: 'users', tier: 'l1', result: 'hit' })
    events.emit('cache.loader', { namespace: 'users', durationMs: 3, outcome: 'ok' })
    events.emit('throttle.decision', { rule: 'api', policy: '100/min', result: 'allowed', store: 'memory' })
    events.emit('db.query', { role: 'primary', node: 'primary', reason: 'write', kind: 'insert', durationMs: 1, ok: true })
    events.emit('db.replica.lag', { node: 'r1', lagMs: 20, healthy: true })
    events.emit('health.check', { name: 'postgres', status: 'pass', durationMs: 2 })
    events.emit('slowlog.slow', { method: 'GET', route: '/users/:id', durationMs: 700 })
    const res = await fetch(`${server.url}/metrics`)
    expect(res.status).toBe(200)
    return await res.text()
  } finally {
    await server.close()
  }
}

describe.skipIf(!requirePromtool())('promtool', () => {
  it('accepts the alert rules and their unit tests', async () => {
    const rules = await runPromtool(['check', 'rules', RULES])
    expect(rules.stdout + rules.stderr).toContain('SUCCESS')
    expect(rules.code).toBe(0)
    const tests = await runPromtool(['test', 'rules', RULE_TESTS])
    expect(tests.stdout + tests.stderr).toContain('SUCCESS')
    expect(tests.code).toBe(0)
  })

  it('accepts a live scrape of an instrumented server (ri metrics lint-clean)', async () => {
    const own = await runPromtool(['check', 'metrics'], await liveScrape(false))
    expect(own.stdout + own.stderr).toBe('')
    expect(own.code).toBe(0)
    // With process metrics on, the only findings are prom-client's own gauge names.
    const all = await runPromtool(['check', 'metrics'], await liveScrape(true))
    const findings = (all.stdout + all.stderr).split('\n').filter(Boolean)
    for (const line of findings) expect(PROM_CLIENT_LINT.has(line.split(' ')[0]!)).toBe(true)
  })

  it('every Grafana dashboard query is valid PromQL over metrics ri exports', async () => {
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[] }
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))
    expect(exprs.length).toBeGreaterThan(15)
    const yaml = [
      'groups:',
      '  - name: dashboard',
      '    rules:',
      ...exprs.flatMap((e, i) => [`      - record: ri_dashboard:query_${i}`, `        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*'))}`]),
    ].join('\n')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ri-dash-'))
    const file = path.join(dir, 'dashboard-rules.yml')
    fs.writeFileSync(file, `${yaml}\n`)
    try {
      const res = await runPromtool(['check', 'rules', file])
      expect(res.stdout + res.stderr).toContain('SUCCESS')
      expect(res.code).toBe(0)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
    // Every metric the dashboard and the alerts query exists in a live scrape.
    const scrape = await liveScrape(false)
    const rulesText = fs.readFileSync(RULES, 'utf8')
    const names = new Set([...(exprs.join('\n') + rulesText).matchAll(/\b((?:http|ri)_[a-z0-9_]+)(?=[{\[ )]|$)/gm)].map((m) => m[1]!))
    expect(names.size).toBeGreaterThan(15)
    for (const name of names) {
      const family = name.replace(/_(bucket|count|sum)$/, '')
      expect(scrape, `${name} is queried by docs/ops but not exported`).toMatch(new RegExp(`^# TYPE ${family}(_total)? `, 'm'))
    }
  })
})
