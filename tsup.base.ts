import { defineConfig, type Options } from 'tsup'

/** Shared build for every publishable package: ESM + CJS + types, one entry per public subpath. */
export function riBuild(entry: string[] = ['src/index.ts'], overrides: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    treeshake: true,
    ...overrides,
  })
}
