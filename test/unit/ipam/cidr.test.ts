import t from 'tap'
import {
  containsCidr,
  formatCidr,
  formatIPv4,
  overlaps,
  parseCidr,
  parseIPv4,
} from '../../../src/ipam/cidr.js'

t.test('parse and format', async (t) => {
  t.equal(parseIPv4('10.244.3.1'), 0x0af40301)
  t.equal(formatIPv4(0xffffffff), '255.255.255.255')
  t.equal(parseIPv4('010.1.1.1'), undefined, 'leading zeros refused')
  t.equal(parseIPv4('1.2.3.4/8'), undefined)
  t.same(parseCidr('0.0.0.0/0'), { cidr: { base: 0, prefix: 0 } })
  t.match(parseCidr('10.0.0.1/8'), { reason: /host bits/ })
  t.match(parseCidr(5), { reason: /CIDR string/ })
  t.equal(formatCidr({ base: 0xc0a80000, prefix: 16 }), '192.168.0.0/16')
})

t.test('containment and overlap', async (t) => {
  const c = (s: string) => (parseCidr(s) as { cidr: { base: number; prefix: number } }).cidr
  t.ok(containsCidr(c('10.0.0.0/8'), c('10.1.0.0/16')))
  t.notOk(containsCidr(c('10.1.0.0/16'), c('10.0.0.0/8')))
  t.ok(overlaps(c('10.0.0.0/8'), c('10.255.255.0/24')))
  t.notOk(overlaps(c('10.0.0.0/24'), c('10.0.1.0/24')))
  t.ok(overlaps(c('255.255.255.0/24'), c('255.255.255.255/32')), 'top of the address space')
})
