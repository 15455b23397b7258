// An agent of the test bed runs under `ip netns exec`, which mounts a fresh
// sysfs over /sys in the agent's own mount namespace: the cgroup hierarchies
// mounted under /sys/fs/cgroup are gone there. Without them the exec driver
// applies no limits and runc (the podman driver) refuses to create a
// container. The script below mounts the same hierarchies again in the agent's
// namespace before it starts (a v1 mount with the same controllers attaches to
// the existing hierarchy), so tasks get the cgroups they would get on a host.

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
/** mountinfo escapes space, tab, newline and backslash as octal */
const fromOctal = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/** Shell lines (pure) that mount again every tmpfs/cgroup/cgroup2 at or below /sys/fs/cgroup of mountinfo, in order. */
export function cgroupMountScript(mountinfo: string): string {
  const lines: string[] = []
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ')
    const dir = fromOctal(left?.split(' ')[4] ?? '')
    const [type, source, superOpts] = right?.split(' ') ?? []
    if (!type || !source || !superOpts) continue
    if (dir !== '/sys/fs/cgroup' && !dir.startsWith('/sys/fs/cgroup/')) continue
    if (type !== 'tmpfs' && type !== 'cgroup' && type !== 'cgroup2') continue
    // a failed mount is said, not fatal: the agent runs, without limits for that controller
    lines.push(
      `mkdir -p ${quote(dir)} && mount -t ${type} -o ${quote(superOpts)} ${quote(fromOctal(source))} ${quote(dir)} || echo "fixture: could not mount ${type} at ${dir}" >&2`,
    )
  }
  return lines.join('\n')
}
