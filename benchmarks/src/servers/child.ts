// Child entry of serveInChild(): imports ./<module>.ts, calls the named factory, listens on a
// random loopback port and prints it.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

const [module, name] = process.argv.slice(2)
const mod = (await import(`./${module}.ts`)) as Record<string, () => Server | Promise<Server>>
const factory = mod[name!]
if (typeof factory !== 'function') throw new Error(`servers/${module}.ts has no export ${name}`)
const server = await factory()
server.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})
process.once('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
