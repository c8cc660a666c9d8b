import { riProject } from '../vitest.shared.js'

export default riProject('@ri/benchmarks', { testTimeout: 300_000 })
