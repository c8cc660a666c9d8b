import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeExample } from '../../example-smoke.js'

describeExample('fastify', join(dirname(fileURLToPath(import.meta.url)), '..'))
