import t from 'tap'
import { hostSockets, parseProcNet, parseSsUsers } from '../../../src/datapath/sockets.js'

t.test('parseProcNet reads listeners and bound UDP sockets', async (t) => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0',
    '   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0',
    '   2: 0B0200C0:A000 0C0200C0:0016 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0',
  ].join('\n')
  t.same(parseProcNet(tcp, 'tcp'), [
    { hostPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1' },
    { hostPort: 80, protocol: 'tcp' },
  ])
  const udp6 = [
    '  sl  local_address                         remote_address                        st',
    '   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07',
    '   1: 0000000000000000FFFF00000B0200C0:1388 00000000000000000000000000000000:0000 07',
    '   2: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 07',
  ].join('\n')
  t.same(parseProcNet(udp6, 'udp'), [
    { hostPort: 53, protocol: 'udp' },
    { hostPort: 5000, protocol: 'udp', hostIp: '192.0.2.11' },
  ])
  t.equal(
    parseSsUsers('LISTEN 0 5 0.0.0.0:9000 0.0.0.0:* users:(("busybox",pid=4242,fd=3))\n'),
    'process "busybox" (pid 4242)',
  )
  t.equal(parseSsUsers(''), undefined)
})

t.test('the host socket table holds a port this process listens on', async (t) => {
  const { createServer } = await import('node:net')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  t.ok(
    (await hostSockets.bound()).some(
      (b) => b.hostPort === port && b.protocol === 'tcp' && b.hostIp === '127.0.0.1',
    ),
  )
  t.match(await hostSockets.holder(port, 'tcp'), /node|port/)
})
