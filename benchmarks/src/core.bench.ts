// Cost of the core pipeline itself on a bare node:http server: the floor every feature adds to.
import { compareServers } from './http.js'
import type { BenchFile } from './types.js'

const bench: BenchFile = async ({ quick, progress }) => {
  const subjects = await compareServers(
    [
      { name: 'bare node:http', module: 'core', server: 'bare', path: '/users/1' },
      { name: 'ri core pipeline (node binding, no features)', module: 'core', server: 'riPipeline', path: '/users/1' },
    ],
    { seconds: quick ? 1 : 5, rounds: quick ? 3 : 5, progress },
  )
  const r = subjects[1]!.opsPerSec / subjects[0]!.opsPerSec
  return [
    {
      id: 'core.pipeline-overhead',
      title: 'Core pipeline on node:http (routing, exchange, request id, finish event)',
      baseline: 'bare node:http',
      subjects,
      target: { text: 'keeps at least 85 % of bare node:http req/s', met: r >= 0.85 },
    },
  ]
}
export default bench
