// ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK: what `conntrack -L` uses): a dump of this
// namespace's IPv4 connection tracking table with each entry's byte counters. Read-only; no process
// spawned. Counters are kept by the kernel only while net.netfilter.nf_conntrack_acct is 1 (the
// datapath sets it); without it an entry has none. Used by traffic/ (bytes between services) and by
// trace --probe (where a probe's packet was seen, whether its answer came back).
//
// Layouts: linux/netfilter/nfnetlink.h (struct nfgenmsg) and nfnetlink_conntrack.h (attributes).
import { createNetlink, FlagsGet } from 'netlink'
import { findAttr, nlAttributes } from './nlattr.js'
import { addressText } from './sock-diag.js'

const NETLINK_NETFILTER = 12
const NFNL_SUBSYS_CTNETLINK = 1
const IPCTNL_MSG_CT_GET = 1
/** a dump request's type, and the type of each entry in the answer (IPCTNL_MSG_CT_NEW) */
const CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
const CT_NEW = NFNL_SUBSYS_CTNETLINK << 8
const AF_INET = 2
/** sizeof(struct nfgenmsg): family, version, res_id */
const NFGEN_LEN = 4

const CTA = { tupleOrig: 1, tupleReply: 2, status: 3, countersOrig: 9, countersReply: 10, id: 12 } as const
/** enum ip_conntrack_status: a packet of the reply direction has passed */
const IPS_SEEN_REPLY = 1 << 1
const CTA_TUPLE = { ip: 1, proto: 2 } as const
const CTA_IP = { v4src: 1, v4dst: 2 } as const
const CTA_PROTO = { num: 1, srcPort: 2, dstPort: 3 } as const
const CTA_COUNTERS = { bytes: 2 } as const

export interface CtTuple {
  src: string
  dst: string
  /** IP protocol number (6 tcp, 17 udp, 1 icmp) */
  protocol: number
  /** 0 for protocols without ports */
  sport: number
  dport: number
}

/** One connection: as its first packet went (orig) and as its answers come (reply: after NAT, the real peer). */
export interface CtEntry {
  /** the kernel's id of the entry, unique while it lives */
  id: number
  orig: CtTuple
  reply: CtTuple
  /** bytes each way since the entry was made; 0 without accounting */
  origBytes: number
  replyBytes: number
  /** the other end has answered (IPS_SEEN_REPLY): with or without accounting */
  seenReply: boolean
}

/** A dump request for the IPv4 table (pure). */
export function ctDumpRequest(): Buffer {
  const b = Buffer.alloc(NFGEN_LEN)
  b[0] = AF_INET
  return b
}

function parseTuple(b: Buffer | undefined): CtTuple | undefined {
  if (!b) return undefined
  const t = nlAttributes(b)
  const ip = nlAttributes(t.get(CTA_TUPLE.ip) ?? Buffer.alloc(0))
  const src = ip.get(CTA_IP.v4src)
  const dst = ip.get(CTA_IP.v4dst)
  if (src?.length !== 4 || dst?.length !== 4) return undefined
  const proto = nlAttributes(t.get(CTA_TUPLE.proto) ?? Buffer.alloc(0))
  const port = (x: Buffer | undefined) => (x?.length === 2 ? x.readUInt16BE(0) : 0)
  return {
    src: addressText(src),
    dst: addressText(dst),
    protocol: proto.get(CTA_PROTO.num)?.[0] ?? 0,
    sport: port(proto.get(CTA_PROTO.srcPort)),
    dport: port(proto.get(CTA_PROTO.dstPort)),
  }
}

/** CTA_COUNTERS_BYTES, a big-endian u64 (u32 on old kernels); 0 when absent */
function counterBytes(b: Buffer | undefined): number {
  const bytes = b ? nlAttributes(b).get(CTA_COUNTERS.bytes) : undefined
  if (bytes?.length === 8) return Number(bytes.readBigUInt64BE(0))
  return bytes?.length === 4 ? bytes.readUInt32BE(0) : 0
}

/** One entry of a dump: a struct nfgenmsg and its attributes (pure); undefined when it has no IPv4 tuples. */
export function parseCtMessage(msg: Buffer): CtEntry | undefined {
  if (msg.length < NFGEN_LEN) return undefined
  const a = nlAttributes(msg.subarray(NFGEN_LEN))
  const orig = parseTuple(a.get(CTA.tupleOrig))
  const reply = parseTuple(a.get(CTA.tupleReply))
  const id = a.get(CTA.id)
  const status = a.get(CTA.status)
  if (!orig || !reply || id?.length !== 4) return undefined
  return {
    seenReply: status?.length === 4 && (status.readUInt32BE(0) & IPS_SEEN_REPLY) !== 0,
    id: id.readUInt32BE(0),
    orig,
    reply,
    origBytes: counterBytes(a.get(CTA.countersOrig)),
    replyBytes: counterBytes(a.get(CTA.countersReply)),
  }
}

/**
 * The orig direction's IPv4 source of one entry as an unsigned integer, read from the attribute
 * headers alone (pure); undefined when it has none.
 */
export function origSource(msg: Buffer): number | undefined {
  if (msg.length < NFGEN_LEN) return undefined
  const tuple = findAttr(msg.subarray(NFGEN_LEN), CTA.tupleOrig)
  const ip = tuple && findAttr(tuple, CTA_TUPLE.ip)
  const src = ip && findAttr(ip, CTA_IP.v4src)
  return src?.length === 4 ? src.readUInt32BE(0) : undefined
}

/**
 * The IPv4 conntrack table of this process's network namespace, and how many entries it had.
 * With `fromSource`, only the entries whose orig source it keeps are parsed (a host's table is
 * mostly connections nobody asked about: parsing all of them held the thread for 19 ms in
 * bench/dns' fixture under load).
 */
export async function dumpConntrack(
  fromSource?: (address: number) => boolean,
): Promise<{ entries: CtEntry[]; total: number }> {
  const nl = createNetlink(NETLINK_NETFILTER)
  try {
    const [msgs] = await nl.request(CT_GET, ctDumpRequest(), { flags: FlagsGet.DUMP })
    const entries: CtEntry[] = []
    let total = 0
    for (const m of msgs) {
      if (m.type !== CT_NEW) continue
      total++
      if (fromSource) {
        const src = origSource(m.data)
        if (src === undefined || !fromSource(src)) continue
      }
      const e = parseCtMessage(m.data)
      if (e) entries.push(e)
    }
    return { entries, total }
  } finally {
    nl.close()
  }
}
