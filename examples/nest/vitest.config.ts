import { riProject } from '../../vitest.shared.js'

export default riProject('example-nest')
