import { defineProject } from 'vitest/config'

/** Shared vitest project settings; integration tests (`*.int.test.ts`) get longer timeouts. */
export function riProject(name: string, overrides: { testTimeout?: number; hookTimeout?: number } = {}) {
  return defineProject({
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: overrides.hookTimeout ?? 120_000,
    },
  })
}
