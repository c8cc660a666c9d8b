import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeExample } from '../../example-smoke.js'

describeExample('hono', join(dirname(fileURLToPath(import.meta.url)), '..'))
