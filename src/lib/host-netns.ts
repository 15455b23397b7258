// The host's own network namespaces. Attaching a container in one, or removing a
// container's interface from one, would act on the host itself: a second route
// for the host subnet, or the host's eth0 deleted (bench/chaos's CNI fuzz took a
// fixture host's eth0 that way). Compared by inode, so any path to one
// (/proc/<pid>/ns/net, a bind mount under /run/netns) is caught. The caller
// passes its stat: the CNI plugin loads node:fs only on the paths that need it.

/** init's namespace and this process's (a runtime runs its plugins in the host's) */
const HOST_NETNS = ['/proc/1/ns/net', '/proc/self/ns/net']

/** The host namespace (the path it was found by) whose inode is `ino`, or undefined. */
export function hostNetnsWithInode(ino: number, stat: (path: string) => { ino: number }): string | undefined {
  for (const host of HOST_NETNS) {
    let hostIno: number
    try {
      hostIno = stat(host).ino
    } catch {
      // init's is unreadable without CAP_SYS_PTRACE (some sandboxes drop it): then only our own is compared
      continue
    }
    if (hostIno === ino) return host
  }
  return undefined
}
