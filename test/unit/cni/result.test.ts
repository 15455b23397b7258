import t from 'tap'
import { CniCode } from '../../../cni/lib/errors.js'
import { type CniResult, convertResult, mergeResults, parseResult } from '../../../cni/lib/result.js'
import { SUPPORTED_VERSIONS } from '../../../cni/lib/version.js'

const full: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'plx0a1b2c3d', mac: '0a:00:00:00:00:01', mtu: 1450 },
    { name: 'eth0', mac: '0a:00:00:00:00:02', mtu: 1450, sandbox: '/var/run/netns/c1' },
  ],
  ips: [{ address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1', mtu: 1450 }],
  dns: {
    nameservers: ['10.244.3.1'],
    search: ['svc.plexus.internal', 'plexus.internal'],
    options: ['ndots:1'],
  },
}

t.test('1.1.0 keeps every field', async (t) => {
  t.same(convertResult(full, '1.1.0'), full)
})

t.test('1.0.0 drops the 1.1.0-only fields', async (t) => {
  const r = convertResult(full, '1.0.0') as {
    cniVersion: string
    interfaces: object[]
    routes: object[]
    ips: object[]
  }
  t.equal(r.cniVersion, '1.0.0')
  t.same(r.interfaces[1], { name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/var/run/netns/c1' })
  t.same(r.routes[0], { dst: '0.0.0.0/0', gw: '10.244.3.1' })
  t.notOk('version' in (r.ips[0] as object))
})

t.test('0.3.x/0.4.0 add the IP version and always carry dns', async (t) => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    const r = convertResult(full, v) as { ips: object[] }
    t.same(r.ips[0], { version: '4', address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 }, v)
    const bare = convertResult({ cniVersion: '1.1.0', ips: [] }, v)
    t.same(bare.dns, {}, `${v} dns object present`)
  }
  t.notOk('dns' in convertResult({ cniVersion: '1.1.0' }, '1.0.0'))
})

t.test('a result printed in any version parses back to the same 1.x content', async (t) => {
  for (const v of SUPPORTED_VERSIONS) {
    const printed = JSON.parse(JSON.stringify(convertResult(full, v)))
    const back = convertResult(parseResult(printed, v), v)
    t.same(back, printed, v)
  }
})

t.test('merging after a previous plugin shifts interface indexes', async (t) => {
  const prev: CniResult = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'lo0' }],
    ips: [{ address: '192.168.1.2/24', interface: 0 }],
  }
  const m = mergeResults(prev, full)
  t.equal(m.interfaces?.length, 3)
  t.equal(m.ips?.[1]?.interface, 2)
  t.same(m.dns, full.dns)
  t.equal(mergeResults(undefined, full), full)
})

t.test('malformed prevResult is a decode error naming the field', async (t) => {
  t.throws(() => parseResult([], '1.0.0'), { code: CniCode.DECODE })
  t.throws(() => parseResult({ interfaces: [{}] }, '1.0.0'), {
    code: CniCode.DECODE,
    msg: /interfaces\[0\]\.name/,
  })
  t.throws(() => parseResult({ ips: [{ address: 'x', interface: 2 }], interfaces: [] }, '1.0.0'), {
    code: CniCode.DECODE,
    msg: /points past/,
  })
  t.throws(() => parseResult({ routes: [{ dst: '0.0.0.0/0', mtu: -1 }] }, '1.1.0'), { code: CniCode.DECODE })
  t.throws(() => parseResult({ dns: { nameservers: 'x' } }, '1.1.0'), { code: CniCode.DECODE })
})
