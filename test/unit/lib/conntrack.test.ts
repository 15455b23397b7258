// ctnetlink messages built attribute by attribute from linux/netfilter/nfnetlink_conntrack.h, and
// what the parser reads of them.
import t from 'tap'
import { parseIPv4 } from '../../../src/lib/addressing.js'
import { ctDumpRequest, origSource, parseCtMessage } from '../../../src/lib/conntrack.js'

const NESTED = 0x8000

/** one netlink attribute: u16 length, u16 type, payload padded to 4 bytes */
function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length
  const b = Buffer.alloc((len + 3) & ~3)
  b.writeUInt16LE(len, 0)
  b.writeUInt16LE(type, 2)
  payload.copy(b, 4)
  return b
}
const nest = (type: number, ...children: Buffer[]) => attr(type | NESTED, Buffer.concat(children))
const ip = (s: string) => Buffer.from(s.split('.').map(Number))
const be16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
const be32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const be64 = (n: bigint) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(n)
  return b
}

function tuple(type: number, src: string, dst: string, sport: number, dport: number): Buffer {
  return nest(
    type,
    nest(1, attr(1, ip(src)), attr(2, ip(dst))),
    nest(2, attr(1, Buffer.from([6])), attr(2, be16(sport)), attr(3, be16(dport))),
  )
}

function message(counters: boolean, status = 0x18e): Buffer {
  return Buffer.concat([
    Buffer.from([2, 0, 0, 0]), // nfgenmsg: AF_INET, version 0, res_id 0
    tuple(1, '10.244.1.2', '10.244.2.3', 40000, 8080),
    tuple(2, '10.244.2.3', '10.244.1.2', 8080, 40000),
    attr(3, be32(status)), // CTA_STATUS: 0x18e has IPS_SEEN_REPLY (bit 1)
    ...(counters
      ? [
          nest(9, attr(1, be64(3n)), attr(2, be64(2n ** 33n + 5n))),
          nest(10, attr(1, be64(2n)), attr(2, be64(700n))),
        ]
      : []),
    attr(12, be32(0xdeadbeef)),
  ])
}

t.test('an entry with counters: tuples both ways, 64-bit byte counts, the id', async (t) => {
  t.same(parseCtMessage(message(true)), {
    id: 0xdeadbeef,
    orig: { src: '10.244.1.2', dst: '10.244.2.3', protocol: 6, sport: 40000, dport: 8080 },
    reply: { src: '10.244.2.3', dst: '10.244.1.2', protocol: 6, sport: 8080, dport: 40000 },
    origBytes: 2 ** 33 + 5,
    replyBytes: 700,
    seenReply: true,
  })
})

t.test('IPS_SEEN_REPLY: whether the other end answered, read from the status bits', async (t) => {
  t.equal(parseCtMessage(message(false, 0x18e))?.seenReply, true, 'seen reply')
  t.equal(
    parseCtMessage(message(false, 0x188))?.seenReply,
    false,
    'only the first direction (a SYN with no answer)',
  )
})

t.test('without accounting an entry has no counters: 0 bytes', async (t) => {
  const e = parseCtMessage(message(false))
  t.equal(e?.origBytes, 0)
  t.equal(e?.replyBytes, 0)
})

t.test('what is not an IPv4 entry is skipped, a truncated one too', async (t) => {
  t.equal(parseCtMessage(Buffer.from([2, 0])), undefined, 'shorter than nfgenmsg')
  const m = message(true)
  t.equal(parseCtMessage(m.subarray(0, 40)), undefined, 'cut inside the tuples')
  t.equal(parseCtMessage(Buffer.concat([m.subarray(0, 4), attr(12, be32(1))])), undefined, 'no tuples')
})

t.test('the dump request asks for the IPv4 table', async (t) => {
  t.same([...ctDumpRequest()], [2, 0, 0, 0])
})

t.test('origSource reads the orig source from the headers, as the parser does', async (t) => {
  const m = message(true)
  t.equal(origSource(m), 0x0af40102, '10.244.1.2')
  t.equal(origSource(m), parseIPv4(parseCtMessage(m)?.orig.src ?? ''), 'the address the parser reads')
  const noOrig = Buffer.concat([Buffer.from([2, 0, 0, 0]), tuple(2, '10.244.2.3', '10.244.1.2', 1, 2)])
  t.equal(origSource(noOrig), undefined, 'no orig tuple')
  const v6 = Buffer.concat([Buffer.from([10, 0, 0, 0]), nest(1, nest(1, attr(3, Buffer.alloc(16))))])
  t.equal(origSource(v6), undefined, 'no IPv4 source (an IPv6 tuple)')
  t.equal(origSource(Buffer.from([2, 0])), undefined, 'shorter than nfgenmsg')
  const cut = m.subarray(0, 10)
  t.equal(origSource(cut), undefined, 'an attribute longer than the message')
})
