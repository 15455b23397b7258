import { spawn } from 'node:child_process'
import { PlexusError } from '../../lib/errors.js'
import { nftGeneration, openNetfilter } from '../../lib/nft-gen.js'
import { withNetns } from '../netns.js'

/**
 * Runs one firewall tool (iptables-restore, nft, ...) with optional stdin and
 * returns its stdout; PLX_FIREWALL_FAILED with its stderr when it fails.
 * One process per batch, never per rule. With netns (a namespace path) the
 * tool runs inside that namespace (tests; the agent uses its own).
 */
export function run(cmd: string, args: string[], stdin?: string, netns?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const [file, argv] =
      netns === undefined ? [cmd, args] : ['nsenter', [`--net=${netns}`, '--', cmd, ...args]]
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d
    })
    child.on('error', (e) =>
      reject(new PlexusError('PLX_FIREWALL_FAILED', `${cmd}: ${e.message}`, { cmd, args })),
    )
    child.on('close', (code) => {
      if (code === 0) resolve(out)
      else
        reject(
          new PlexusError('PLX_FIREWALL_FAILED', `${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`, {
            cmd,
            args,
            code,
            stderr: err,
          }),
        )
    })
    child.stdin.on('error', () => {
      // the exit status reports the failure
    })
    child.stdin.end(stdin ?? '')
  })
}

/** The nf_tables generation of the namespace the tools run in (the agent's own, or `netns`). */
export function generationIn(netns?: string): Promise<number | undefined> {
  return nftGeneration(netns === undefined ? openNetfilter : () => withNetns(netns, openNetfilter))
}
