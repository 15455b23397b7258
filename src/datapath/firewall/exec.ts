import { type ChildProcess, spawn } from 'node:child_process'
import type { Socket } from 'node:net'
import { PlexusError } from '../../lib/errors.js'
import { nftGeneration, openNetfilter } from '../../lib/nft-gen.js'
import { withNetns } from '../netns.js'

/** a started tool process: stdin still open, its stdout once it exits 0 */
interface Started {
  child: ChildProcess
  output: Promise<string>
  exited: boolean
}

function start(cmd: string, args: string[], netns?: string): Started {
  const [file, argv] = netns === undefined ? [cmd, args] : ['nsenter', [`--net=${netns}`, '--', cmd, ...args]]
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  const started: Started = { child, exited: false, output: Promise.resolve('') }
  started.output = new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d
    })
    child.on('error', (e) => {
      started.exited = true
      reject(new PlexusError('PLX_FIREWALL_FAILED', `${cmd}: ${e.message}`, { cmd, args }))
    })
    child.on('exit', () => {
      started.exited = true
    })
    child.on('close', (code) => {
      started.exited = true
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
    child.stdin?.on('error', () => {
      // the exit status reports the failure
    })
  })
  return started
}

/**
 * Runs one firewall tool (iptables-restore, nft, ...) with optional stdin and
 * returns its stdout; PLX_FIREWALL_FAILED with its stderr when it fails.
 * One process per batch, never per rule. With netns (a namespace path) the
 * tool runs inside that namespace (tests; the agent uses its own).
 */
export function run(cmd: string, args: string[], stdin?: string, netns?: string): Promise<string> {
  const s = start(cmd, args, netns)
  s.child.stdin?.end(stdin ?? '')
  return s.output
}

/** a command and its arguments */
export type Tool = readonly [cmd: string, args: string[]]

/** the handles of a child that keep Node's loop alive: a waiting tool must not keep a process from exiting */
function hold(child: ChildProcess, on: boolean): void {
  // with stdio 'pipe' the three are sockets
  const pipes = [child.stdin, child.stdout, child.stderr] as (Socket | null)[]
  for (const h of [child, ...pipes]) {
    if (on) h?.ref()
    else h?.unref()
  }
}

/**
 * Tool processes started before their batch is known, each waiting on stdin
 * for it. Starting a process costs the agent 5-7 ms of its main thread (a
 * fork of a 100 MB process) and the tool as long again to load before it
 * reads a line; a CNI ADD waits for its batch, so that is paid ahead, after
 * the previous batch (prepare()). The tools read the kernel's rules only
 * when they commit, so a process that waited is no staler than a new one; a
 * legacy iptables-restore takes the xtables lock at its first table, not
 * while it waits. A waiting process holds nothing open in the kernel, and
 * exits on the end of its stdin, which comes when the agent exits or
 * release() is called: an empty batch changes nothing.
 */
export class WarmTools {
  private readonly waiting = new Map<string, Started>()

  constructor(private readonly netns?: string) {}

  /** starts a process of each tool that has none waiting */
  prepare(tools: readonly Tool[]): void {
    for (const [cmd, args] of tools) {
      const key = [cmd, ...args].join(' ')
      if (this.waiting.get(key)?.exited === false) continue
      const s = start(cmd, args, this.netns)
      // an unused process that dies is replaced by the next prepare(), its failure reported by nobody
      s.output.catch(() => undefined)
      hold(s.child, false)
      this.waiting.set(key, s)
    }
  }

  /** run() through the tool's waiting process when it has one, else a new process */
  run(cmd: string, args: string[], stdin: string): Promise<string> {
    const key = [cmd, ...args].join(' ')
    const s = this.waiting.get(key)
    this.waiting.delete(key)
    if (!s || s.exited) return run(cmd, args, stdin, this.netns)
    hold(s.child, true)
    s.child.stdin?.end(stdin)
    return s.output
  }

  /** ends the waiting processes (their stdin closes: an empty batch) */
  release(): void {
    for (const s of this.waiting.values()) s.child.stdin?.end()
    this.waiting.clear()
  }
}

/** The nf_tables generation of the namespace the tools run in (the agent's own, or `netns`). */
export function generationIn(netns?: string): Promise<number | undefined> {
  return nftGeneration(netns === undefined ? openNetfilter : () => withNetns(netns, openNetfilter))
}
