import { open } from 'node:fs/promises'
import { newClusterKey } from '../../lib/cluster-key.js'
import type { RegisterCommand } from '../context.js'

export const registerCluster: RegisterCommand = (program, ctx) => {
  const cluster = program.command('cluster').description('cluster setup')
  cluster
    .command('init')
    .description(
      'generate a new cluster key (no agent needed); give the same key to every host (cluster.keyFile)',
    )
    .option(
      '--out <file>',
      'write the key to this file (mode 0600, never overwritten) instead of printing it',
    )
    .action(async (o: { out?: string }) => {
      const key = newClusterKey()
      if (!o.out) return ctx.print(key)
      // wx: an existing key file is a running cluster's key; replacing it would lock this host out
      const fh = await open(o.out, 'wx', 0o600)
      try {
        await fh.writeFile(key)
      } finally {
        await fh.close()
      }
      process.stderr.write(`cluster key written to ${o.out}; copy it to every host and set cluster.keyFile\n`)
    })
}
