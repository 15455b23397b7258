// A peer's RTT: the kernel's, from its connections' endpoints, else a ping.
import t from 'tap'
import { endpointText, measureRtt } from '../../../src/cluster/kernel-rtt.js'

const transport = (endpoints: Record<string, string[]>, pingMs = 7) => ({
  pings: 0,
  remoteEndpoints: (peer: string) => endpoints[peer] ?? [],
  async ping() {
    this.pings++
    return pingMs
  },
})

t.test('the smallest kernel RTT of the peer’s connections', async (t) => {
  const tr = transport({ p1: ['192.0.2.12:7373', '192.0.2.12:40112'] })
  const kernel = new Map([
    ['192.0.2.12:7373', 0.09],
    ['192.0.2.12:40112', 0.05],
    ['192.0.2.13:7373', 0.01],
  ])
  t.same(await measureRtt(tr, 'p1', 1000, async () => kernel), { ms: 0.05, by: 'kernel' })
  t.equal(tr.pings, 0, 'no ping sent')
})

t.test('a ping where the kernel has no sample, or no sock_diag', async (t) => {
  const tr = transport({ p1: ['192.0.2.12:7373'] })
  t.same(await measureRtt(tr, 'p1', 1000, async () => new Map()), { ms: 7, by: 'ping' })
  const failing = async (): Promise<Map<string, number>> => {
    throw new Error('EPROTONOSUPPORT')
  }
  t.same(await measureRtt(tr, 'p1', 1000, failing), { ms: 7, by: 'ping' })
  t.same(await measureRtt(tr, 'p2', 1000, failing), { ms: 7, by: 'ping' }, 'no connection')
})

t.test('endpoints are written alike on both sides', async (t) => {
  t.equal(endpointText('192.0.2.12', 7373), '192.0.2.12:7373')
  t.equal(endpointText('2001:db8::1', '7373'), '[2001:db8::1]:7373')
})
