import { test } from 'vitest'
test.todo('docs code blocks are checked (written by the docs work)')
