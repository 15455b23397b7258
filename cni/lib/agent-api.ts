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

/**
 * The container's namespace as the plugin holds it open: the agent opens
 * /proc/<pid>/fd/<fd>, a magic link that reaches the namespace even when the
 * runtime (and so CNI_NETNS) lives in another mount namespace. `ino` is the
 * namespace's inode, so the agent never takes another process's descriptor
 * for it (a plugin in another PID namespace sends a pid the agent cannot use).
 */
export interface NetnsHandle {
  pid: number
  fd: number
  ino: number
}

/** POST /v1/cni/add: one container interface, resolved by the plugin. */
export interface AttachRequest extends Attachment {
  /** CNI_NETNS as the runtime named it (the result's `sandbox`) */
  netns: string
  netnsHandle?: NetnsHandle
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

/**
 * A DEL the agent could not take (not running): the plugin leaves one of
 * these in <socket's folder>/cni-spool/ and the agent finishes the DEL when it
 * starts. `at` (ms since the epoch) keeps it from touching an attachment made
 * after it.
 */
export interface SpoolRecord extends Attachment {
  version: 1
  netns: string
  at: number
}

/** The spool sits next to the socket the plugin was told to use: the agent drains the folder of each socket it serves. */
export function spoolDirOf(socket: string): string {
  return `${socket.slice(0, socket.lastIndexOf('/')) || ''}/cni-spool`
}
