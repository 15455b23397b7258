// The native batching UDP socket (native/udp.c via src/dns/udp.ts), directly and
// under DnsListener, inside a throwaway namespace: batches from many senders,
// oversized datagrams, IPv6, replies that wait for a full socket (a veth whose
// qdisc is throttled with tbf), close at awkward moments, bind errors and fds.
import { execFileSync } from 'node:child_process'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { readdirSync } from 'node:fs'
import { type AddressInfo, connect, createServer } from 'node:net'
import { endianness } from 'node:os'
import dnsPacket from 'dns-packet'
import t from 'tap'
import type { Reply } from '../../src/dns/chain.js'
import { type ChainFor, DnsListener, emptyStats } from '../../src/dns/server.js'
import { type BatchSocket, closeBatchSocket, openBatchSocket, udpAddon } from '../../src/dns/udp.js'
import { errorReply, type Query, RCODE_NXDOMAIN } from '../../src/dns/wire.js'
import { ownNetns } from '../helpers/own-netns.js'

await ownNetns(import.meta.url, 'plxudp')

const { SLOT_SIZE, META_STRIDE, META_LEN, META_TRUNC, META_OUT, QUEUE_MAX } = udpAddon()
const openFds = () => readdirSync('/proc/self/fd').length

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  return cond()
}

async function client(type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpSocket> {
  const c = createSocket(type)
  await new Promise<void>((r) => c.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r))
  t.teardown(() => c.close())
  return c
}

/** A socket that answers every datagram with "re:" + the datagram, and records its batch sizes. */
function echo(address = '127.0.0.1', port = 0): { s: BatchSocket; batches: number[]; truncated: number[] } {
  const batches: number[] = []
  const truncated: number[] = []
  const s = openBatchSocket(address, port, (n) => {
    batches.push(n)
    for (let i = 0; i < n; i++) {
      const off = i * SLOT_SIZE
      const m = i * META_STRIDE
      const len = s.meta[m + META_LEN]!
      if (s.meta[m + META_TRUNC]) {
        truncated.push(len)
        continue
      }
      s.output.write('re:', off, 'latin1')
      s.input.copy(s.output, off + 3, off, off + len)
      s.meta[m + META_OUT] = len + 3
    }
  })
  t.teardown(() => closeBatchSocket(s))
  return { s, batches, truncated }
}

t.test('a burst from many senders: read in batches, every reply to its own sender', async (t) => {
  const { s, batches } = echo()
  t.ok(s.port > 0 && s.port < 65536, `port 0 gives a real port (${s.port})`)
  const SENDERS = 8
  const EACH = 40
  const clients = await Promise.all(Array.from({ length: SENDERS }, () => client()))
  const got: string[][] = clients.map(() => [])
  clients.forEach((c, k) => {
    c.on('message', (m) => got[k]!.push(m.toString('latin1')))
  })
  // all sent in this JS turn: they wait in the kernel until the loop polls, then come in batches
  for (let j = 0; j < EACH; j++)
    for (let k = 0; k < SENDERS; k++) clients[k]!.send(`${k}-${j}`, s.port, '127.0.0.1')
  t.ok(await until(() => got.every((g) => g.length === EACH), 3000), 'every datagram answered')
  for (let k = 0; k < SENDERS; k++) {
    const want = Array.from({ length: EACH }, (_, j) => `re:${k}-${j}`).sort()
    t.same(got[k]!.sort(), want, `sender ${k} got exactly its own replies`)
  }
  t.ok(Math.max(...batches) > 1, `several datagrams per JS call (largest batch ${Math.max(...batches)})`)
  const st = s.stats()
  t.equal(st.received, SENDERS * EACH)
  t.equal(st.sent, SENDERS * EACH)
  t.same([st.dropped, st.errors, st.queued], [0, 0, 0])
})

t.test('a datagram bigger than a slot is flagged, cut to the slot, and the socket goes on', async (t) => {
  const { s, truncated } = echo()
  const c = await client()
  const replies: string[] = []
  c.on('message', (m) => replies.push(m.toString('latin1')))
  c.send(Buffer.alloc(SLOT_SIZE + 100, 7), s.port, '127.0.0.1')
  c.send('after', s.port, '127.0.0.1')
  t.ok(await until(() => replies.length === 1, 2000))
  t.same(truncated, [SLOT_SIZE], 'seen once, with no more than a slot of it')
  t.same(replies, ['re:after'])
})

t.test('close() from inside a batch: no more batches, no replies from it, fd closed', async (t) => {
  const c = await client()
  const before = openFds()
  let calls = 0
  let closed: Promise<void> | undefined
  const s = openBatchSocket('127.0.0.1', 0, (n) => {
    calls++
    for (let i = 0; i < n; i++) s.meta[i * META_STRIDE + META_OUT] = 1
    closed ??= closeBatchSocket(s)
  })
  let replies = 0
  c.on('message', () => replies++)
  for (let i = 0; i < 50; i++) c.send('x', s.port, '127.0.0.1')
  t.ok(await until(() => closed !== undefined, 2000))
  await closed
  t.equal(calls, 1)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(replies, 0)
  t.equal(s.sendTo(Buffer.from('late'), Buffer.alloc(16)), false, 'a late reply is refused, not thrown')
  t.equal(openFds(), before, 'no fd left behind')
})

t.test(
  'bind errors: EADDRINUSE with errno and syscall, no fd leaked; bad arguments are TypeErrors',
  async (t) => {
    const taken = await client()
    const port = taken.address().port
    const before = openFds()
    t.throws(() => openBatchSocket('127.0.0.1', port, () => {}), {
      code: 'EADDRINUSE',
      errno: 98,
      syscall: 'bind',
      message: new RegExp(`127\\.0\\.0\\.1:${port}`),
    })
    t.throws(() => openBatchSocket('192.0.2.1', 0, () => {}), { code: 'EADDRNOTAVAIL', syscall: 'bind' })
    t.throws(() => openBatchSocket('not-an-ip', 0, () => {}), TypeError)
    t.throws(() => openBatchSocket('127.0.0.1', 70000, () => {}), TypeError)
    t.equal(openFds(), before, 'the failed sockets were closed')

    // DnsListener: the UDP bind succeeds, the TCP port is taken: listen rejects, UDP is closed again
    const srv = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    t.teardown(() => srv.close())
    const fdsBefore = openFds()
    const l = new DnsListener(
      '127.0.0.1',
      {
        port: (srv.address() as AddressInfo).port,
        maxTcpConnections: 8,
        maxTcpPerClient: 8,
        tcpMessageMs: 1000,
      },
      chains,
      emptyStats(),
    )
    await t.rejects(l.listen(), { code: 'EADDRINUSE' })
    t.equal(openFds(), fdsBefore, 'nothing left open')
  },
)

// sockaddr_in as the kernel lays it out: family in host byte order, port and address in network order
function sockaddr4(ip: string, port: number): Buffer {
  const b = Buffer.alloc(16)
  if (endianness() === 'LE') b.writeUInt16LE(2, 0)
  else b.writeUInt16BE(2, 0)
  b.writeUInt16BE(port, 2)
  ip.split('.').forEach((o, i) => {
    b[4 + i] = Number(o)
  })
  return b
}

t.test(
  'replies wait while the socket is full, bounded, and go out once it drains; close while queued',
  async (t) => {
    const ip = (...args: string[]) => execFileSync('ip', args)
    const tc = (...args: string[]) => execFileSync('tc', args)
    ip('link', 'add', 'qv0', 'type', 'veth', 'peer', 'name', 'qv1')
    t.teardown(() => ip('link', 'del', 'qv0'))
    ip('link', 'set', 'qv0', 'up')
    ip('link', 'set', 'qv1', 'up')
    ip('addr', 'add', '10.9.0.1/24', 'dev', 'qv0')
    // no ARP wait: packets for .2 go straight to the qdisc, which lets almost nothing out
    ip('neigh', 'add', '10.9.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'qv0', 'nud', 'permanent')
    const throttle = (rate: string) =>
      tc('qdisc', 'replace', 'dev', 'qv0', 'root', 'tbf', 'rate', rate, 'burst', '1600', 'limit', '100mb')
    throttle('8kbit')
    const peer = sockaddr4('10.9.0.2', 9)
    const big = Buffer.alloc(60000)
    const small = Buffer.alloc(100)

    const fill = (s: BatchSocket): number => {
      let n = 0
      while (s.stats().queued === 0 && n < 10000) {
        s.sendTo(big, peer)
        n++
      }
      return n
    }

    const before = openFds()
    const s = openBatchSocket('10.9.0.1', 0, () => {})
    const bigOnes = fill(s)
    t.equal(s.stats().queued, 1, `the send buffer took ${bigOnes - 1} datagrams, then one was queued`)
    for (let i = 0; i < QUEUE_MAX + 100; i++) s.sendTo(small, peer)
    t.equal(s.stats().queued, QUEUE_MAX, 'the queue is bounded')
    t.equal(s.stats().dropped, 101, 'and what did not fit is counted')
    throttle('1gbit')
    t.ok(await until(() => s.stats().queued === 0, 10000), 'the queue drains once the socket is writable')
    t.equal(s.stats().sent, bigOnes + QUEUE_MAX + 100 - 101, 'everything not dropped went out')
    t.equal(s.stats().errors, 0)
    await closeBatchSocket(s)

    throttle('8kbit')
    const s2 = openBatchSocket('10.9.0.1', 0, () => {})
    fill(s2)
    for (let i = 0; i < 100; i++) s2.sendTo(small, peer)
    t.equal(s2.stats().queued, 101)
    await closeBatchSocket(s2)
    t.equal(s2.sendTo(small, peer), false)
    t.equal(openFds(), before, 'closed with replies queued: no fd left behind')
  },
)

// ---- through DnsListener: the real answer path on the native socket ----

function query(id: number, name: string): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: 'A' }],
  })
}

/** answers NXDOMAIN with the question echoed; names starting with "slow" only after 50 ms */
function chain(q: Query): Reply {
  if (!q.key.startsWith('\x04slow')) return errorReply(q, RCODE_NXDOMAIN)
  return new Promise((resolve) => setTimeout(() => resolve(errorReply(q, RCODE_NXDOMAIN)), 50))
}

/** the askers the listeners named (IPv4 as an integer, 0 for IPv6; TCP's as text), in order */
const askers: (number | string)[] = []
const chains: ChainFor = {
  v4: (address) => {
    askers.push(address)
    return chain
  },
  text: (address) => {
    askers.push(address)
    return chain
  },
}

async function listener(address: string): Promise<{ l: DnsListener; stats: ReturnType<typeof emptyStats> }> {
  const stats = emptyStats()
  const l = new DnsListener(
    address,
    { port: 0, maxTcpConnections: 8, maxTcpPerClient: 8, tcpMessageMs: 1000 },
    chains,
    stats,
  )
  await l.listen()
  t.teardown(() => l.close())
  return { l, stats }
}

t.test('DnsListener: ids and questions come back to the sender that asked', async (t) => {
  const { l, stats } = await listener('127.0.0.1')
  const clients = await Promise.all(Array.from({ length: 4 }, () => client()))
  const got: Map<number, string>[] = clients.map(() => new Map())
  clients.forEach((c, k) => {
    c.on('message', (m) => {
      const d = dnsPacket.decode(m)
      got[k]!.set(d.id!, d.questions![0]!.name)
    })
  })
  // a slow (async) answer first: the batches after it reuse its slot before it is sent
  clients[0]!.send(query(1, 'slow.one.test'), l.port, '127.0.0.1')
  for (let id = 2; id < 200; id++) clients[id % 4]!.send(query(id, `n${id}.test`), l.port, '127.0.0.1')
  t.ok(await until(() => got.reduce((n, g) => n + g.size, 0) === 199, 3000), 'all answered')
  t.equal(got[0]!.get(1), 'slow.one.test', 'the async reply kept its own question')
  for (let id = 2; id < 200; id++) t.equal(got[id % 4]!.get(id), `n${id}.test`)
  t.equal(stats.udpQueries, 199)
  t.ok(askers.includes(0x7f000001), 'the chain is picked by the sender address, 127.0.0.1 as an integer')
})

t.test('DnsListener on IPv6 loopback: UDP and TCP', async (t) => {
  const { l } = await listener('::1')
  const c = await client('udp6')
  const reply = new Promise<Buffer>((r) => c.once('message', r))
  c.send(query(4242, 'v6.test'), l.port, '::1')
  const d = dnsPacket.decode(await reply)
  t.same([d.id, (d as { rcode?: string }).rcode, d.questions![0]!.name], [4242, 'NXDOMAIN', 'v6.test'])
  t.equal(askers.at(-1), 0, 'an IPv6 sender is 0 on the UDP path')
  const tcp = await new Promise<Buffer>((resolve, reject) => {
    const q = query(7, 'tcp.v6.test')
    const s = connect(l.port, '::1', () => s.write(Buffer.concat([Buffer.from([0, q.length]), q])))
    s.on('data', (b: Buffer) => {
      s.destroy()
      resolve(b)
    })
    s.on('error', reject)
  })
  t.equal(dnsPacket.streamDecode(tcp).id, 7)
  t.equal(askers.at(-1), '::1', "TCP names the peer's address")
})
