// Containers cannot speak for others across hosts (issue 18), for both
// firewall backends: a packet with a forged source (outside the cluster
// network, or another host's subnet) is not delivered to a container on
// another host, and a raw VXLAN packet a container sends to another host's
// VXLAN port (inner source: any address it likes) is not decapsulated there.
// A genuine packet on the same path arrives, so a broken path cannot pass.
import t from 'tap'
import { nsExec } from './tempns.js'
import { macOf, sleep, topology, waitFor } from './topology.js'
import { PORT, receive, SEND } from './udp-probe.js'

/** sends one VXLAN packet to host:vxport whose inner frame is UDP inner_src -> inner_dst:PORT for the VTEP MAC */
const VXLAN = `
import socket, struct, sys
host, vxport, vni, mac, inner_src, inner_dst, payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7].encode()
udp = struct.pack('!HHHH', 40000, ${PORT}, 8 + len(payload), 0) + payload
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(inner_src), socket.inet_aton(inner_dst))
c = sum(struct.unpack('!10H', hdr)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
hdr = hdr[:10] + struct.pack('!H', ~c & 0xffff) + hdr[12:]
eth = bytes.fromhex(mac.replace(':', '')) + bytes.fromhex('02aabbccddee') + b'\\x08\\x00'
vx = struct.pack('!II', 0x08000000, vni << 8)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(vx + eth + hdr + udp, (host, vxport))
`

for (const firewall of ['iptables', 'nftables'] as const) {
  t.test(`forged sources and raw VXLAN from a container are dropped (${firewall})`, async (t) => {
    const topo = await topology(t, {
      hosts: 2,
      network: { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } },
      firewall,
    })
    const [h1, h2] = topo.hosts as [(typeof topo.hosts)[0], (typeof topo.hosts)[0]]
    const vtepMac = macOf(h2.ns.name, 'plexus.1')
    const rx = receive(h2.ep.name, 60_000)
    t.teardown(() => rx.stop())
    const send = (src: string, payload: string) =>
      nsExec(h1.ep.name, 'python3', ['-c', SEND, src, h2.ep.ip, payload])
    const arrives = async (payload: string) => {
      const by = Date.now() + 10_000
      while (!rx.lines().includes(payload) && Date.now() < by) {
        send('-', payload)
        await sleep(200)
      }
    }
    // python starts slowly on a loaded machine: the receiver is bound once it says so
    await waitFor(() => rx.lines().includes('ready'), 30_000)
    // the path is up (routes and neighbours programmed) once a genuine packet crosses
    await arrives('genuine')
    t.ok(rx.lines().includes('genuine'), 'a genuine packet crosses')
    send('203.0.113.5', 'forged-outside')
    send('10.244.3.9', 'forged-other-subnet')
    // the inner source is h1's subnet: h2 routes it back through the overlay, so only the firewall can refuse it
    nsExec(h1.ep.name, 'python3', [
      '-c',
      VXLAN,
      h2.address,
      String(topo.network.Backend.Port),
      String(topo.network.Backend.VNI),
      vtepMac,
      '10.244.1.77',
      h2.ep.ip,
      'raw-vxlan',
    ])
    // sent after the forged ones, over the same path: once it is in, so would they be
    await arrives('genuine-after')
    await sleep(300)
    const got = rx.lines()
    t.ok(got.includes('genuine-after'), `the path still works after them (got ${JSON.stringify(got)})`)
    t.notOk(got.includes('forged-outside'), 'a source outside the cluster network is not delivered')
    t.notOk(got.includes('forged-other-subnet'), 'another host’s subnet as source is not delivered')
    t.notOk(got.includes('raw-vxlan'), 'a raw VXLAN packet from a container is not decapsulated')
  })
}
