import { riProject } from '../vitest.shared.js'

export default riProject('ri-docs', { testTimeout: 180_000 })
