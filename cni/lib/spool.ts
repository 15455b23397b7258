// DEL without the agent. A runtime tears a sandbox down whether or not plexusd
// is running (crashed, restarting, being upgraded), and a DEL that fails
// leaves the pod stuck. So the plugin does the one kernel step that matters to
// the runtime itself, removing the interface from the container's namespace,
// and leaves the rest (address, rules, record, host veth) to the agent in a
// spool file it drains when it starts (src/endpoints/spool.ts). Only this
// path loads node:child_process; a normal DEL never does.
import { hostNetnsWithInode } from '../../src/lib/host-netns.js'
import { type SpoolRecord, spoolDirOf } from './agent-api.js'
import type { CniEnv } from './env.js'
import { CniCode, CniError } from './errors.js'

type Fs = typeof import('node:fs')

/** One file per attachment; a repeated DEL rewrites it. */
export function spoolFileName(containerId: string, ifname: string): string {
  return `${containerId}.${Buffer.from(ifname).toString('hex')}.json`
}

/** Writes the record atomically (temp file, rename); the temp file never stays behind. */
export function writeSpool(fs: Fs, socket: string, rec: SpoolRecord): string {
  const dir = spoolDirOf(socket)
  const file = `${dir}/${spoolFileName(rec.containerId, rec.ifname)}`
  const tmp = `${file}.${process.pid}.tmp`
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    fs.writeFileSync(tmp, `${JSON.stringify(rec)}\n`, { mode: 0o600 })
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw new CniError(
      CniCode.IO_FAILURE,
      `plexusd is not reachable and the DEL could not be recorded in ${dir}: ${(err as Error).message}`,
    )
  }
  return file
}

/**
 * Removes CNI_IFNAME from the container's namespace (the veth pair goes with
 * it). Returns what happened, for the log; never throws: the spool record
 * still lets the agent finish the job. Without CNI_NETNS, or once the
 * namespace is gone, the kernel already removed the pair with the namespace.
 */
export function removeInterface(fs: Fs, env: CniEnv): string {
  if (!env.netns) return 'no CNI_NETNS: the namespace, and the veth with it, is already gone'
  if (!fs.existsSync(env.netns)) return `${env.netns} is gone, and the veth with it`
  // a DEL naming the host's own namespace (init's, or the plugin's, which a runtime runs in the host's)
  // would delete a host interface
  let ino: number
  try {
    ino = fs.statSync(env.netns).ino
  } catch {
    return `cannot read ${env.netns}: nothing removed there`
  }
  const host = hostNetnsWithInode(ino, fs.statSync)
  if (host !== undefined)
    return `${env.netns} is a host network namespace (the same as ${host}): nothing removed there`
  const { spawnSync } = process.getBuiltinModule('node:child_process')
  const r = spawnSync('nsenter', [`--net=${env.netns}`, 'ip', 'link', 'del', env.ifname], {
    encoding: 'utf8',
    timeout: 10_000,
  })
  if (r.status === 0) return `removed ${env.ifname} from ${env.netns}`
  const why = r.error?.message ?? r.stderr.trim()
  return /Cannot find device/.test(why)
    ? `${env.ifname} was not in ${env.netns}`
    : `could not remove ${env.ifname} from ${env.netns}: ${why}`
}
