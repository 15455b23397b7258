// Registers every backend; import this once (desired.ts does) before backendFor().
import './hostgw/index.js'
import './vxlan/index.js'

export { type Backend, backendFor } from './backend.js'
