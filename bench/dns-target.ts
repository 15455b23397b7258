// The Plexus side of bench/dns: the agent's DNS service (same code, same store
// type) over a store holding N container endpoints (c0..c<N-1>.ctr.plexus.internal),
// listening on 127.0.0.1:<port> in whatever namespace this runs in. Prints "ready".
import '../src/lib/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createSigner, verifyRecordSignature } from '../src/cluster/identity.js'
import { LocalStore } from '../src/store/store.js'
import { localDns } from './lib/local-dns.js'

const [port = '5300', names = '1000'] = process.argv.slice(2)
const signer = createSigner(await generateKeyPair('Ed25519'))
const store = new LocalStore({ signer, verify: verifyRecordSignature })
for (let i = 0; i < Number(names); i++) {
  await store.put(`endpoints/${signer.self}/c${i}/eth0`, {
    containerId: `c${i}`,
    ifname: 'eth0',
    name: `c${i}`,
    host: 'h1',
    ipv4: `10.244.${i >> 8}.${(i & 255) + 1 > 255 ? 1 : (i & 255) + 1}`,
    mac: '02:00:00:00:00:01',
    netns: '',
    hostVeth: '',
    labels: {},
    createdAt: new Date().toISOString(),
  })
}
const dns = localDns(store, signer.self, Number(port))
await dns.start()
process.stdout.write(`ready ${JSON.stringify(dns.status().zone)}\n`)
process.on('SIGTERM', () => {
  void dns.stop().then(() => process.exit(0))
})
