// `plexctl tls init`: a cluster CA and a certificate per host for the TCP
// operator API (as `consul tls ca create` / `cert create` do). ECDSA P-256,
// CA 5 years, hosts 1 year, each host's names and addresses as SANs.
// @peculiar/x509 builds the certificates over WebCrypto: Node can parse X.509
// but not issue it, and a maintained, dependency-light builder beats shelling
// out to openssl (one more package on every operator's machine) or writing
// ASN.1 by hand. It needs the reflect-metadata polyfill loaded first.
import 'reflect-metadata'
import { randomBytes, type webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY_MS = 86_400_000

export interface Pem {
  cert: string
  key: string
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key))
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`
}

const serial = (): string => `01${randomBytes(15).toString('hex')}` // positive, 16 bytes

export async function createCa(name = 'Plexus cluster CA', now = new Date()): Promise<Pem> {
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: now,
    notAfter: new Date(now.getTime() + 5 * 365 * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) }
}

/** A host's certificate signed by `ca`: server and client use, `names` as DNS SANs, `ips` as IP SANs. */
export async function createHostCert(
  ca: Pem,
  host: { names: string[]; ips: string[] },
  now = new Date(),
): Promise<Pem> {
  const caCert = new x509.X509Certificate(ca.cert)
  const caDer = Buffer.from(ca.key.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')
  const caKey = await crypto.subtle.importKey('pkcs8', caDer, ALG, false, ['sign'])
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${host.names[0] ?? host.ips[0] ?? 'plexus'}`,
    issuer: caCert.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        ...host.names.map((value) => ({ type: 'dns' as const, value })),
        ...host.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) }
}
