// trace --probe: one real packet from the source's namespace (a TCP SYN, a
// UDP datagram or an ICMP echo), its round trip, and where the kernel saw it:
// each host on the path is asked for the flow's conntrack entry (ctnetlink,
// src/lib/conntrack.ts), which also says whether the answer came back
// through it. Nothing here needs a tool the Makefile does not install:
// TCP is a connect() by a node child in the namespace (the agent cannot make
// a TCP socket inside another namespace: Node creates it a tick too late for
// withNetns), UDP the native socket (netns-udp.ts), ICMP iputils' ping.
import { execFile } from 'node:child_process'
import { parseIPv4 } from '../../lib/addressing.js'
import { dumpConntrack } from '../../lib/conntrack.js'
import { errorMessage, PlexusError } from '../../lib/errors.js'
import { exchangeUdp } from '../netns-udp.js'
import type { Flow, SeenQuestion } from './model.js'

/** how long a probe waits for its answer: the trace as a whole answers within 2 s */
export const PROBE_TIMEOUT_MS = 1000

export interface ProbeResult {
  /** answered: SYN-ACK, echo reply or a datagram back; refused: RST or port unreachable */
  outcome: 'answered' | 'refused' | 'no-answer' | 'error'
  rttMs?: number
  /** the probe's source port (TCP, UDP): how each host finds its conntrack entry */
  sport?: number
  detail: string
}

// argv: host port timeoutMs localPort. Prints one JSON line and exits.
const TCP_CONNECT = `
const net = require('node:net')
const [, host, port, wait, localPort] = process.argv
const t0 = process.hrtime.bigint()
const s = net.connect({ host, port: +port, localPort: +localPort })
const out = (o) => { process.stdout.write(JSON.stringify({ ...o, ms: Number(process.hrtime.bigint() - t0) / 1e6 })); s.destroy(); process.exit(0) }
s.setTimeout(+wait, () => out({ outcome: 'no-answer' }))
s.on('connect', () => out({ outcome: 'answered' }))
s.on('error', (e) => out({ outcome: e.code === 'ECONNREFUSED' ? 'refused' : 'error', detail: e.code }))
`

function spawnIn(
  netns: string | undefined,
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [file, argv] = netns === undefined ? [cmd, args] : ['nsenter', [`--net=${netns}`, '--', cmd, ...args]]
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: PROBE_TIMEOUT_MS + 2000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0
      if (typeof code !== 'number')
        reject(new PlexusError('PLX_PROBE_FAILED', `${cmd}: ${errorMessage(err)}`))
      else resolve({ code, stdout, stderr })
    })
  })
}

/** an ephemeral port for the probe's socket, chosen here so the hosts can look its flow up */
const ephemeral = () => 32768 + Math.floor(Math.random() * 28000)

async function tcpProbe(netns: string | undefined, flow: Flow): Promise<ProbeResult> {
  const sport = ephemeral()
  const r = await spawnIn(netns, process.execPath, [
    '-e',
    TCP_CONNECT,
    flow.dst,
    String(flow.port),
    String(PROBE_TIMEOUT_MS),
    String(sport),
  ])
  const o = JSON.parse(r.stdout || '{}') as { outcome?: ProbeResult['outcome']; ms?: number; detail?: string }
  const outcome = o.outcome ?? 'error'
  const said = {
    answered: 'SYN answered by SYN-ACK',
    refused: 'SYN answered by RST (nothing listens)',
    'no-answer': `no answer to the SYN within ${PROBE_TIMEOUT_MS} ms`,
    error: `connect failed: ${o.detail ?? r.stderr.trim()}`,
  }[outcome]
  return {
    outcome,
    sport,
    detail: said,
    ...(outcome === 'no-answer' || o.ms === undefined ? {} : { rttMs: o.ms }),
  }
}

async function icmpProbe(netns: string | undefined, flow: Flow): Promise<ProbeResult> {
  const r = await spawnIn(netns, 'ping', ['-n', '-c', '1', '-W', String(PROBE_TIMEOUT_MS / 1000), flow.dst])
  const ms = /time=([\d.]+) ms/.exec(r.stdout)?.[1]
  if (r.code === 0 && ms) return { outcome: 'answered', rttMs: Number(ms), detail: 'echo request answered' }
  const unreachable = /Unreachable|Prohibited/i.exec(r.stdout)
  return {
    outcome: unreachable ? 'refused' : 'no-answer',
    detail: unreachable ? `ICMP: ${unreachable[0]}` : `no echo reply within ${PROBE_TIMEOUT_MS} ms`,
  }
}

async function udpProbe(netns: string | undefined, flow: Flow): Promise<ProbeResult> {
  const x = await exchangeUdp(
    netns,
    flow.dst,
    flow.port as number,
    [Buffer.from('plexus trace probe\n')],
    PROBE_TIMEOUT_MS,
  )
  return x.firstReplyMs === undefined
    ? {
        outcome: 'no-answer',
        sport: x.sport,
        detail: `no datagram back within ${PROBE_TIMEOUT_MS} ms (a UDP service need not answer: see where it was seen)`,
      }
    : { outcome: 'answered', sport: x.sport, rttMs: x.firstReplyMs, detail: 'a datagram came back' }
}

/** sends the probe from `netns` (absent: this host's namespace) */
export async function sendProbe(netns: string | undefined, flow: Flow): Promise<ProbeResult> {
  try {
    if (flow.proto === 'icmp') return await icmpProbe(netns, flow)
    if (flow.port === undefined) return { outcome: 'error', detail: `a ${flow.proto} probe needs a port` }
    return flow.proto === 'tcp' ? await tcpProbe(netns, flow) : await udpProbe(netns, flow)
  } catch (err) {
    return { outcome: 'error', detail: errorMessage(err) }
  }
}

export interface Seen {
  host: string
  seen: boolean
  /** the conntrack entry, as `conntrack -L` would show it */
  object: string
}

const PROTO_NUMBER = { tcp: 6, udp: 17, icmp: 1 } as const

/** this host's conntrack entry of the probe's flow: the packet passed this host's netfilter */
export async function seenHere(host: string, q: SeenQuestion): Promise<Seen> {
  const protocol = PROTO_NUMBER[q.proto]
  const from = parseIPv4(q.src)
  const hits = (await dumpConntrack((src) => src === from)).entries.filter(
    (e) =>
      e.orig.src === q.src &&
      e.orig.dst === q.dst &&
      e.orig.protocol === protocol &&
      (q.dport === undefined || e.orig.dport === q.dport) &&
      (q.sport === undefined || e.orig.sport === q.sport),
  )
  const e = hits[0]
  if (!e)
    return {
      host,
      seen: false,
      object: `no conntrack entry ${q.proto} ${q.src} → ${q.dst}${q.dport ? `:${q.dport}` : ''}`,
    }
  const port = (p: number) => (protocol === 1 ? '' : `:${p}`)
  const nat = e.reply.src !== e.orig.dst ? `, answered by ${e.reply.src}${port(e.reply.sport)} (NAT)` : ''
  return {
    host,
    seen: true,
    object: `conntrack ${q.proto} ${e.orig.src}${port(e.orig.sport)} → ${e.orig.dst}${port(e.orig.dport)}${nat}, ${e.seenReply ? 'reply seen' : 'no reply seen'}`,
  }
}
