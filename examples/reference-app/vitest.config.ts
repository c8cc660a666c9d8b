import { defineProject, mergeConfig } from 'vitest/config'
import { riProject } from '../../vitest.shared.js'

// scale/: the multi-instance, chaos and soak tests (scale/README.md) live beside their scripts.
export default mergeConfig(riProject('reference-app'), defineProject({ test: { include: ['scale/**/*.test.ts'] } }))
