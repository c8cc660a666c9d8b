// Cost of the core pipeline itself on a bare node:http server: the floor every feature adds to.
import { compareServers, pairedRatio } from './http.js'
import type { BenchFile } from './types.js'

const bench: BenchFile = async ({ quick, progress }) => {
  const subjects = await compareServers(
    [
      { name: 'bare node:http', module: 'core', server: 'bare', path: '/users/1' },
      { name: 'ri core pipeline (node binding, no features)', module: 'core', server: 'riPipeline', path: '/users/1' },
    ],
    { seconds: quick ? 1 : 5, rounds: quick ? 3 : 7, progress },
  )
  // Target: median of per-round ratios (a drifting shared machine cancels out of each round).
  const r = pairedRatio(subjects[1]!, subjects[0]!)
  return [
    {
      id: 'core.pipeline-overhead',
      title: 'Core pipeline on node:http (routing, exchange, request id, finish event)',
      baseline: 'bare node:http',
      subjects,
      target: { text: `keeps at least 85 % of bare node:http req/s (measured ${(r * 100).toFixed(0)} %, median of per-round ratios)`, met: r >= 0.85 },
      notes: 'Subjects interleaved, order rotated each round; table: each subject\'s median round. autocannon shares the 2 cores with the server, so the bytes of each response (the x-request-id header) weigh on the client as well.',
    },
  ]
}
export default bench
