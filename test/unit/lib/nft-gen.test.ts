// The NEWGEN answer's layout, as the kernel sent it in this test bed's root
// namespace (struct nfgenmsg, then NFTA_GEN_ID, NFTA_GEN_PROC_PID, NFTA_GEN_PROC_NAME).
import t from 'tap'
import { parseGeneration } from '../../../src/lib/nft-gen.js'

t.test('the generation id is read from its attribute, big-endian', async (t) => {
  const kernel = Buffer.from('0000000108000100000000010800020000004326090003006e6f646500000000', 'hex')
  t.equal(parseGeneration(kernel), 1)
  const big = Buffer.from(kernel)
  big.writeUInt32BE(0x01020304, 8)
  t.equal(parseGeneration(big), 0x01020304, 'not little-endian')
})

t.test('an answer without the attribute, or cut short, has none', async (t) => {
  t.equal(parseGeneration(Buffer.from('00000001', 'hex')), undefined, 'header only')
  t.equal(parseGeneration(Buffer.from('000000010800020000004326', 'hex')), undefined, 'only the pid')
  t.equal(parseGeneration(Buffer.from('00000001060001000000', 'hex')), undefined, 'id of 2 bytes')
})
