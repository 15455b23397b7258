// plexctl tls init's certificates: a CA and a host certificate that a real TLS
// handshake accepts for the host's address and name, and refuses for another
// name or without the CA.

import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer } from 'node:tls'
import t from 'tap'
import { parseHostSpec } from '../../../src/cli/commands/tls.js'
import { createCa, createHostCert } from '../../../src/cli/tls.js'

t.test('host specs', async (t) => {
  t.same(parseHostSpec('h1=10.0.0.1,h1.example,fd00::1'), {
    name: 'h1',
    names: ['h1', 'h1.example'],
    ips: ['10.0.0.1', 'fd00::1'],
  })
  t.throws(() => parseHostSpec('h1'), /NAME=IP/)
  t.throws(() => parseHostSpec('h1=h1.example'), /no IP address/)
  t.throws(() => parseHostSpec('H 1=10.0.0.1'), /NAME=IP/)
})

t.test('a CA and a host certificate', async (t) => {
  const ca = await createCa()
  const host = await createHostCert(ca, { names: ['h1'], ips: ['127.0.0.1'] })
  const caCert = new X509Certificate(ca.cert)
  const cert = new X509Certificate(host.cert)
  t.ok(caCert.ca, 'the CA is a CA')
  t.notOk(cert.ca, 'the host certificate is not')
  t.ok(cert.verify(caCert.publicKey), 'signed by the CA')
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
  t.equal(cert.checkHost('h1'), 'h1')
  t.match(host.key, /^-----BEGIN PRIVATE KEY-----\n/)

  const server = createServer({ cert: host.cert, key: host.key }, (s) => s.end('ok'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const handshake = (opts: { ca?: string; servername?: string }) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, ...opts }, () => s.end())
      s.once('secureConnect', () => resolve('ok'))
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    })
  t.equal(await handshake({ ca: ca.cert }), 'ok', 'trusted for its address with the CA')
  t.equal(await handshake({ ca: ca.cert, servername: 'h1' }), 'ok', 'and for its name')
  t.equal(
    await handshake({ ca: ca.cert, servername: 'h2' }),
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'not for another name',
  )
  t.match(await handshake({}), /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/, 'not without the CA')
})
