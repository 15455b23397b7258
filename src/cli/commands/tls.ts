import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import type { RegisterCommand } from '../context.js'
import { collect } from '../output.js'
import { createCa, createHostCert, type Pem } from '../tls.js'

/** "h1=10.0.0.1,h1.example" → the host's file name, its DNS names and its addresses */
export function parseHostSpec(spec: string): { name: string; names: string[]; ips: string[] } {
  const m = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)=(.+)$/.exec(spec)
  if (!m) throw new Error(`--host: "${spec}" is not NAME=IP[,IP or DNS name…]`)
  const name = m[1] as string
  const rest = (m[3] as string).split(',').filter(Boolean)
  const ips = rest.filter((x) => isIP(x) !== 0)
  if (!ips.length) throw new Error(`--host: "${spec}" names no IP address`)
  return { name, names: [name, ...rest.filter((x) => isIP(x) === 0)], ips }
}

/** a private key is written 0600, once: refusing to overwrite is what keeps a CA's certificates valid */
async function save(dir: string, base: string, pem: Pem): Promise<void> {
  await writeFile(join(dir, `${base}.pem`), pem.cert, { mode: 0o644, flag: 'wx' })
  await writeFile(join(dir, `${base}-key.pem`), pem.key, { mode: 0o600, flag: 'wx' })
}

export const registerTls: RegisterCommand = (program, ctx) => {
  const tls = program
    .command('tls')
    .description('certificates for the TCP operator API (api.listen, api.tls)')

  tls
    .command('init')
    .description(
      'make the cluster CA in --dir (kept when it exists) and a certificate for each --host; give each agent its NAME.pem and NAME-key.pem as api.tls, and clients ca.pem as --ca-file',
    )
    .option('--dir <dir>', 'where the files go', '.')
    .option('--host <NAME=IP[,IP|DNS…]>', 'a host to certify (repeatable)', collect, [] as string[])
    .action(async (o: { dir: string; host: string[] }) => {
      const hosts = o.host.map(parseHostSpec)
      await mkdir(o.dir, { recursive: true, mode: 0o700 })
      let ca: Pem
      if (existsSync(join(o.dir, 'ca.pem'))) {
        ca = {
          cert: await readFile(join(o.dir, 'ca.pem'), 'utf8'),
          key: await readFile(join(o.dir, 'ca-key.pem'), 'utf8'),
        }
        ctx.print(`using the CA in ${join(o.dir, 'ca.pem')}\n`)
      } else {
        ca = await createCa()
        await save(o.dir, 'ca', ca)
        ctx.print(
          `made the cluster CA: ${join(o.dir, 'ca.pem')} (its key ca-key.pem stays with the operator)\n`,
        )
      }
      for (const h of hosts) {
        await save(o.dir, h.name, await createHostCert(ca, h))
        ctx.print(`made ${join(o.dir, `${h.name}.pem`)} for ${[...h.names, ...h.ips].join(', ')}\n`)
      }
    })
}
