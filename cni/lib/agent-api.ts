// What the plugin sends plexusd (POST /v1/cni/add and /del): the one
// definition both sides compile against. The plugin imports nothing from
// src/; the agent imports this, as it does the error code table.
import type { CniDns } from './result.js'

export interface PortSpec {
  name?: string
  port: number
  protocol: 'tcp' | 'udp'
}

export interface PortMapping {
  hostIp?: string
  hostPort: number
  containerPort: number
  protocol: 'tcp' | 'udp'
}

/** one container interface, as CNI names it */
export interface Attachment {
  containerId: string
  ifname: string
}

/** POST /v1/cni/add: one container interface, resolved by the plugin. */
export interface AttachRequest extends Attachment {
  netns: string
  network: string
  name?: string
  namespace?: string
  service?: string
  tags?: string[]
  labels: Record<string, string>
  ports?: PortSpec[]
  published?: PortMapping[]
  /** static address, "a.b.c.d" or "a.b.c.d/len" */
  ip?: string
  mac?: string
  dns?: CniDns
}

/** POST /v1/cni/del */
export interface DetachRequest extends Attachment {
  /** may be empty: the runtime already removed the namespace */
  netns?: string
}
