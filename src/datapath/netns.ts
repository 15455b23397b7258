// The single way into a network namespace. Read native/README.md for why it
// works this way; in short: Node cannot pin a JS task to a thread, so we only
// ever do *synchronous* work inside a namespace (create a netlink socket,
// open a /proc/sys/net file) and switch back before this JS turn ends.
import { closeSync, constants, openSync, statfsSync, statSync } from 'node:fs'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { hostNetnsWithInode } from '../lib/host-netns.js'
import { loadAddon } from '../lib/native.js'

/** statfs(2) f_type of nsfs, the filesystem namespace handles live on */
const NSFS_MAGIC = 0x6e736673
/** the calling thread's own namespace (not /proc/self: that is the thread group leader) */
const OWN_NETNS = '/proc/thread-self/ns/net'

interface NetnsAddon {
  setnsNet(fd: number): void
}

function native(): NetnsAddon {
  return loadAddon<NetnsAddon>('plexus_netns', 'PLX_NETNS_ADDON')
}

/**
 * Checks that path names a network namespace handle (e.g. /run/netns/x or
 * /proc/<pid>/ns/net). Throws PLX_NETNS_NOT_FOUND when it does not exist
 * (callers doing idempotent teardown ignore that code, like CNI's
 * NSPathNotExistErr) and PLX_NETNS_INVALID when it is some other file.
 */
export function assertNetnsPath(path: string): void {
  let type: number
  try {
    type = statfsSync(path).type
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new PlexusError('PLX_NETNS_NOT_FOUND', `network namespace ${path} does not exist`)
    throw new PlexusError('PLX_NETNS_INVALID', `network namespace ${path}: ${errorMessage(err)}`)
  }
  if (type !== NSFS_MAGIC)
    throw new PlexusError('PLX_NETNS_INVALID', `${path} is not a namespace handle (not on nsfs)`)
}

/**
 * The path this process should use for a namespace a caller named. The
 * caller's own descriptor (/proc/<pid>/fd/<fd>, a magic link) reaches the
 * namespace whatever mount namespace the caller's path lives in; the inode
 * check makes sure the descriptor is still the one the caller opened (a pid
 * from another PID namespace names some other process here). Without a
 * usable handle, the path as this process sees it.
 */
export function resolveNetns(path: string, handle?: { pid: number; fd: number; ino: number }): string {
  if (handle) {
    const viaFd = `/proc/${handle.pid}/fd/${handle.fd}`
    try {
      if (statfsSync(viaFd).type === NSFS_MAGIC && statSync(viaFd).ino === handle.ino) return viaFd
    } catch {
      // gone or not ours to read: fall back to the path
    }
  }
  assertNetnsPath(path)
  return path
}

/**
 * Refuses a host namespace as a container's: attaching there would put an
 * interface and a second route for the host subnet into the host itself.
 */
export function assertNotHostNetns(path: string, named = path): void {
  const host = hostNetnsWithInode(statSync(path).ino, statSync)
  if (host !== undefined) {
    throw new PlexusError(
      'PLX_NETNS_HOST',
      `${named} is a host network namespace (the same as ${host}); a container needs its own`,
    )
  }
}

function openNs(path: string): number {
  assertNetnsPath(path)
  try {
    return openSync(path, constants.O_RDONLY)
  } catch (err) {
    throw new PlexusError('PLX_NETNS_INVALID', `cannot open network namespace ${path}: ${errorMessage(err)}`)
  }
}

/**
 * Runs fn with the main thread inside the network namespace at nsPath, then
 * switches back, all in this JS turn. fn must be synchronous: anything it
 * schedules (promises, callbacks, libuv thread-pool work) runs after the
 * switch back, in the host namespace. What fn may do: create sockets (a
 * socket stays in the namespace it was created in for its whole life) and
 * synchronous fs calls on /proc/sys/net. A returned promise is refused.
 *
 * If switching back fails the process is in the wrong namespace and would go
 * on programming the wrong kernel, so it exits at once (CNI's ns panics too).
 */
export function withNetns<T>(nsPath: string, fn: () => T): T {
  const { setnsNet } = native()
  const target = openNs(nsPath)
  let own: number
  try {
    own = openSync(OWN_NETNS, constants.O_RDONLY)
  } catch (err) {
    closeSync(target)
    throw new PlexusError('PLX_NETNS_INVALID', `cannot open own network namespace: ${errorMessage(err)}`)
  }
  try {
    try {
      setnsNet(target)
    } catch (err) {
      throw new PlexusError(
        'PLX_NETNS_ENTER',
        `cannot enter network namespace ${nsPath}: ${errorMessage(err)}`,
      )
    }
    try {
      const result = fn()
      if (result && typeof (result as { then?: unknown }).then === 'function') {
        throw new PlexusError(
          'PLX_NETNS_ASYNC',
          'withNetns callback must be synchronous (it returned a promise)',
        )
      }
      return result
    } finally {
      try {
        setnsNet(own)
      } catch (err) {
        process.stderr.write(`plexus: FATAL: cannot return to own network namespace: ${errorMessage(err)}\n`)
        process.exit(70)
      }
    }
  } finally {
    closeSync(own)
    closeSync(target)
  }
}
