import { riBuild } from '../../tsup.base.js'

export default riBuild()
