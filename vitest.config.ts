import { defineConfig } from 'vitest/config'

// One project per workspace package: `pnpm vitest run --project @ri/core` runs one package.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'examples/*/vitest.config.ts', 'docs/vitest.config.ts', 'benchmarks/vitest.config.ts'],
    reporters: process.env.CI ? ['default'] : ['default'],
  },
})
