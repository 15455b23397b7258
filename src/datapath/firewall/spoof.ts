// Pure: the `spoof` firewall section (issue 18), layer 2, one block of rules
// per container veth built from this host's endpoint records. A frame that
// enters the bridge from a container's veth must carry that container's MAC;
// IPv4 must come from its address; ARP must announce its address and MAC;
// IPv6 only from its own IPv6 address (if it has one) or link-local, and a
// neighbour advertisement (IPv6's ARP reply) only for its own IPv6 address or
// its link-local one; no other
// ethertype (a VLAN tag would hide the IP header from these checks). So a
// container that takes a neighbour's address or MAC reaches no one, the
// bridge never learns the neighbour's MAC on the wrong port, and the host's
// ARP cache is never pointed at it.
//
// The rules sit at the bridge's prerouting hook: before FDB learning, and for
// frames to other containers on the bridge as well as to the host, which the
// layer-3 `isolation` section never sees as coming from a veth.
// Every drop's kernel counter is read into `datapath.spoof.dropped`.
import { isIPv6 } from 'node:net'
import { parseIPv4 } from '../../ipam/cidr.js'
import { canonicalIPv6, type Rule, type Section } from './model.js'

/** what the rules need of one endpoint record (endpoints/<this host>/…) */
export interface SpoofEndpoint {
  hostVeth: string
  mac: string
  ipv4: string
  ipv6?: string
}

/** ahead of everything: the rules are in their own hook, so the order only fixes where the section is listed */
export const SPOOF_ORDER = 5
export const SPOOF_SECTION = 'spoof'

const IFNAME = /^[A-Za-z0-9_.@-]{1,15}$/
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/**
 * The link-local address the kernel gives an interface with this MAC (modified EUI-64, RFC 4291 2.5.1:
 * the universal/local bit flipped, ff:fe in the middle): addr_gen_mode eui64, the default in a new
 * namespace. A container that picks another link-local address cannot advertise it.
 */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => Number.parseInt(x, 16))
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16)
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = b
  return `fe80::${hex(b0 ^ 2, b1)}:${hex(b2, 0xff)}:${hex(0xfe, b3)}:${hex(b4, b5)}`
}

/** a rule id per veth ([a-z0-9-]): the name itself when it fits, else a readable form and a hash of it */
function vethId(veth: string): string {
  const plain = veth.toLowerCase().replace(/[^a-z0-9-]/g, '-')
  if (plain === veth) return veth
  let h = 0
  for (const ch of veth) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return `${plain}-${h.toString(16)}`
}

/** the endpoint's fields that every renderer can take safely, or why not */
export function checkEndpoint(e: SpoofEndpoint): string | undefined {
  if (!IFNAME.test(e.hostVeth)) return `host interface "${e.hostVeth}" is not an interface name`
  if (!MAC.test(e.mac)) return `MAC "${e.mac}" is not a MAC address`
  if (parseIPv4(e.ipv4) === undefined) return `"${e.ipv4}" is not an IPv4 address`
  if (e.ipv6 !== undefined && !isIPv6(e.ipv6)) return `"${e.ipv6}" is not an IPv6 address`
  return undefined
}

function endpointRules(e: SpoofEndpoint): Rule[] {
  const id = vethId(e.hostVeth)
  const iif = e.hostVeth
  const mac = e.mac.toLowerCase()
  const drop = { type: 'drop' } as const
  const pass = { type: 'return' } as const
  return [
    { id: `${id}-mac`, hook: 'bridge', match: { iif, notSrcMac: mac }, action: drop },
    { id: `${id}-ip`, hook: 'bridge', match: { iif, etherType: 'ipv4', notSrc: e.ipv4 }, action: drop },
    { id: `${id}-ip-ok`, hook: 'bridge', match: { iif, etherType: 'ipv4' }, action: pass },
    { id: `${id}-arp-ip`, hook: 'bridge', match: { iif, etherType: 'arp', notArpSrc: e.ipv4 }, action: drop },
    {
      id: `${id}-arp-mac`,
      hook: 'bridge',
      match: { iif, etherType: 'arp', notArpSrcMac: mac },
      action: drop,
    },
    { id: `${id}-arp-ok`, hook: 'bridge', match: { iif, etherType: 'arp' }, action: pass },
    // neighbour discovery needs link-local; a container without an IPv6 address has no IPv6 to speak
    ...(e.ipv6 === undefined
      ? []
      : ([
          {
            id: `${id}-na-target`,
            hook: 'bridge',
            match: { iif, etherType: 'ipv6', notNaTarget: [canonicalIPv6(e.ipv6), linkLocalOf(mac)] },
            action: drop,
          },
          {
            id: `${id}-ip6-ok`,
            hook: 'bridge',
            match: { iif, etherType: 'ipv6', src6: canonicalIPv6(e.ipv6) },
            action: pass,
          },
          {
            id: `${id}-ip6-ll`,
            hook: 'bridge',
            match: { iif, etherType: 'ipv6', src6: 'fe80::/10' },
            action: pass,
          },
        ] satisfies Rule[])),
    { id: `${id}-other`, hook: 'bridge', match: { iif }, action: drop },
  ]
}

/**
 * Each endpoint's rules as the last section made them, by the fields they come
 * from: the same endpoint gets the same rule objects, whose tags are then not
 * hashed again (ruleTag). Only the last section's endpoints are kept.
 */
let made = new Map<string, Rule[]>()

/** the section for this host's endpoints, each checked with checkEndpoint first */
export function spoofSection(endpoints: SpoofEndpoint[]): Section {
  const sorted = [...endpoints].sort((a, b) => a.hostVeth.localeCompare(b.hostVeth))
  const now = new Map<string, Rule[]>()
  const rules = sorted.flatMap((e) => {
    const key = `${e.hostVeth} ${e.mac} ${e.ipv4} ${e.ipv6 ?? ''}`
    const mine = made.get(key) ?? endpointRules(e)
    now.set(key, mine)
    return mine
  })
  made = now
  return { name: SPOOF_SECTION, order: SPOOF_ORDER, rules }
}
