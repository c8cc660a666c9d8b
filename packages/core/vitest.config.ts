import { defineProject } from 'vitest/config'

export default defineProject({
  test: { name: '@ri/core', include: ['src/**/*.test.ts'] },
})
