// A tiny upstream DNS server for the test bed: tests run it inside their own
// namespaces so forwarding is exercised without touching any outside address.
//   stub-dns --listen 127.0.0.2:53 --record example.test=203.0.113.7 [--ttl 60] [--mode ok|servfail|silent]
// Answers A for its records (UDP and TCP), NXDOMAIN with SOA otherwise; prints "ready" when bound.
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import { Command, Option } from 'commander'
import dnsPacket from 'dns-packet'

const collect = (v: string, prev: string[]) => [...prev, v]
const opts = new Command('stub-dns')
  .requiredOption('--listen <ip:port>', 'address to bind (UDP and TCP)')
  .option('--record <name=ip>', 'A record (repeatable)', collect, [])
  .option('--ttl <s>', 'TTL of answers', '60')
  .addOption(
    new Option('--mode <m>', 'ok: answer; servfail: always SERVFAIL; silent: never answer')
      .choices(['ok', 'servfail', 'silent'])
      .default('ok'),
  )
  .parse()
  .opts<{ listen: string; record: string[]; ttl: string; mode: 'ok' | 'servfail' | 'silent' }>()

const [host, portText] = [
  opts.listen.slice(0, opts.listen.lastIndexOf(':')),
  opts.listen.slice(opts.listen.lastIndexOf(':') + 1),
]
const port = Number(portText)
const records = new Map(
  opts.record.map((r) => {
    const [name, ip] = r.split('=')
    return [name!.toLowerCase().replace(/\.$/, ''), ip!]
  }),
)
let queries = 0

function answer(msg: Buffer): Buffer | undefined {
  let q: dnsPacket.DecodedPacket
  try {
    q = dnsPacket.decode(msg)
  } catch {
    return undefined
  }
  queries++
  if (opts.mode === 'silent') return undefined
  const question = q.questions?.[0]
  const name = question?.name.toLowerCase() ?? ''
  const ip = records.get(name)
  const rcode = opts.mode === 'servfail' ? 2 : ip || !question ? 0 : 3
  const answers =
    ip && question?.type === 'A' && rcode === 0
      ? [{ type: 'A' as const, name: question.name, ttl: Number(opts.ttl), data: ip }]
      : []
  const authorities =
    rcode === 3
      ? [
          {
            type: 'SOA' as const,
            name: 'test',
            ttl: 30,
            data: {
              mname: 'ns.test',
              rname: 'h.test',
              serial: 1,
              refresh: 1,
              retry: 1,
              expire: 1,
              minimum: 30,
            },
          },
        ]
      : []
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_AVAILABLE | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
    questions: q.questions ?? [],
    answers,
    authorities,
  })
}

const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4')
udp.on('message', (msg, r) => {
  const out = answer(msg)
  if (out) udp.send(out, r.port, r.address)
})
const tcp = createServer((s) => {
  let buf = Buffer.alloc(0)
  s.on('error', () => s.destroy())
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c])
    while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
      const out = answer(buf.subarray(2, buf.readUInt16BE(0) + 2))
      buf = buf.subarray(buf.readUInt16BE(0) + 2)
      if (out) s.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 255]), out]))
    }
  })
})
udp.bind(port, host, () => {
  tcp.listen(port, host, () => process.stdout.write('ready\n'))
})
process.on('SIGUSR1', () => process.stderr.write(`queries ${queries}\n`))
process.on('SIGTERM', () => process.exit(0))
