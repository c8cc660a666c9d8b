import { riBuild } from '../../tsup.base.js'

export default riBuild(['src/index.ts', 'src/node.ts'])
