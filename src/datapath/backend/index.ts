// Registers every backend; import this once (desired.ts does) before backendFor().
import './hostgw/index.js'
import './vxlan/index.js'
import './wireguard/index.js'

export { type Backend, backendFor, type LocalIdentity } from './backend.js'
