// WireGuard's cross-platform UAPI (https://www.wireguard.com/xplatform/): a
// text protocol of key=value lines on the device's unix socket, the same one
// `wg` speaks to wireguard-go. Pure parsing and rendering here; `uapiCall`
// is the one effect. Keys are hex on the wire, base64 everywhere else.
import { createConnection } from 'node:net'
import { PlexusError } from '../../../lib/errors.js'
import type { WgPeer } from '../../model.js'

/** what `get=1` reports, keys in base64 */
export interface DeviceState {
  /** base64; absent while no key is set */
  privateKey?: string
  listenPort: number
  peers: PeerState[]
}

export interface PeerState extends WgPeer {
  /** seconds since the epoch; 0: never */
  lastHandshake: number
  rxBytes: number
  txBytes: number
}

/** what a device should hold */
export interface DeviceConfig {
  privateKey: string
  listenPort: number
  peers: WgPeer[]
}

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex')
const b64 = (h: string) => Buffer.from(h, 'hex').toString('base64')
const ZERO_KEY = '0'.repeat(64)

/** Parses a `get=1` answer (without its errno line, see uapiCall). Unknown keys are skipped (newer versions). */
export function parseGet(text: string): DeviceState {
  const dev: DeviceState = { listenPort: 0, peers: [] }
  let peer: PeerState | undefined
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const k = line.slice(0, eq)
    const v = line.slice(eq + 1)
    if (k === 'public_key') {
      peer = { publicKey: b64(v), endpoint: '', allowedIps: [], lastHandshake: 0, rxBytes: 0, txBytes: 0 }
      dev.peers.push(peer)
    } else if (!peer) {
      if (k === 'private_key' && v !== ZERO_KEY) dev.privateKey = b64(v)
      else if (k === 'listen_port') dev.listenPort = Number(v)
    } else if (k === 'endpoint') peer.endpoint = v
    else if (k === 'allowed_ip') peer.allowedIps.push(v)
    else if (k === 'last_handshake_time_sec') peer.lastHandshake = Number(v)
    else if (k === 'rx_bytes') peer.rxBytes = Number(v)
    else if (k === 'tx_bytes') peer.txBytes = Number(v)
  }
  return dev
}

const samePeer = (a: WgPeer, b: WgPeer) =>
  a.endpoint === b.endpoint && [...a.allowedIps].sort().join() === [...b.allowedIps].sort().join()

export interface DevicePlan {
  /** the `set=1` request body, or undefined when the device already holds the config */
  request?: string
  added: string[]
  updated: string[]
  removed: string[]
  keyChanged: boolean
  portChanged: boolean
}

/**
 * The smallest `set=1` request that turns `have` into `want`: peers are
 * added, changed or removed one by one (never `replace_peers`, which would
 * drop every session and cost each peer a handshake).
 */
export function planDevice(want: DeviceConfig, have: DeviceState): DevicePlan {
  const lines: string[] = []
  const plan: DevicePlan = { added: [], updated: [], removed: [], keyChanged: false, portChanged: false }
  if (have.privateKey !== want.privateKey) {
    lines.push(`private_key=${hex(want.privateKey)}`)
    plan.keyChanged = true
  }
  if (have.listenPort !== want.listenPort) {
    lines.push(`listen_port=${want.listenPort}`)
    plan.portChanged = true
  }
  const wanted = new Map(want.peers.map((p) => [p.publicKey, p]))
  for (const p of have.peers) {
    if (wanted.has(p.publicKey)) continue
    lines.push(`public_key=${hex(p.publicKey)}`, 'remove=true')
    plan.removed.push(p.publicKey)
  }
  const held = new Map(have.peers.map((p) => [p.publicKey, p]))
  for (const p of want.peers) {
    const h = held.get(p.publicKey)
    if (h && samePeer(h, p)) continue
    ;(h ? plan.updated : plan.added).push(p.publicKey)
    lines.push(
      `public_key=${hex(p.publicKey)}`,
      `endpoint=${p.endpoint}`,
      'replace_allowed_ips=true',
      ...p.allowedIps.map((ip) => `allowed_ip=${ip}`),
    )
  }
  return lines.length ? { ...plan, request: `set=1\n${lines.join('\n')}\n\n` } : plan
}

/**
 * Sends one request on the device socket and returns the answer's body
 * (without the errno line). PLX_WG_UAPI_FAILED when the socket does not
 * answer in time, or with errno ≠ 0 (the device refused the request).
 */
export function uapiCall(socketPath: string, request: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath)
    let buf = ''
    const fail = (why: string, errno?: number) => {
      sock.destroy()
      reject(new PlexusError('PLX_WG_UAPI_FAILED', `${socketPath}: ${why}`, { errno }))
    }
    sock.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`))
    sock.on('error', (err) => fail(err.message))
    sock.on('data', (d) => {
      buf += d.toString('utf8')
      const m = /(?:^|\n)errno=(-?\d+)\n\n$/.exec(buf)
      if (!m) return
      sock.end()
      const errno = Number(m[1])
      if (errno !== 0) fail(`the device refused the request (errno ${errno})`, errno)
      else resolve(buf.slice(0, m.index))
    })
    sock.on('end', () => fail('closed before answering'))
    sock.write(request)
  })
}

export async function getDevice(socketPath: string): Promise<DeviceState> {
  return parseGet(await uapiCall(socketPath, 'get=1\n\n'))
}
