// Resource limits for one task through cgroups: v1 (one hierarchy per
// controller, as on these machines) or v2 (the unified hierarchy) where it is
// mounted. Every task gets plexus/<alloc>/<task> in each hierarchy; the
// cgroup also proves which processes are the task's (a child it forked
// included), so stop can kill them all and nothing is left.
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sleep } from '../../lib/proc.js'

export interface Limits {
  cpu: number
  memoryMb: number
  pids: number
}

export interface CgroupLayout {
  version: 1 | 2
  /** v1: mount point per controller (memory, cpu, pids); v2: the one mount point under `unified` */
  mounts: { memory?: string; cpu?: string; pids?: string; unified?: string }
}

/** Where cgroups are mounted, from /proc/self/mounts text (pure). */
export function parseCgroupMounts(mounts: string): CgroupLayout {
  const v1: CgroupLayout['mounts'] = {}
  let unified: string | undefined
  for (const line of mounts.split('\n')) {
    const [, dir, type, opts] = line.split(' ')
    if (!dir || !opts) continue
    if (type === 'cgroup2') unified ??= dir
    if (type !== 'cgroup') continue
    const o = opts.split(',')
    for (const c of ['memory', 'cpu', 'pids'] as const) if (o.includes(c)) v1[c] ??= dir
  }
  // v1 wins when its controllers are there: a hybrid host's cgroup2 mount holds no controllers
  if (v1.memory || v1.cpu || v1.pids || !unified) return { version: 1, mounts: v1 }
  return { version: 2, mounts: { unified } }
}

/** The values to write, per controller file (pure): cpu in millicores → CFS quota per 100 ms period. */
export function limitFiles(version: 1 | 2, l: Limits): Record<string, string> {
  const period = 100_000
  const quota = l.cpu * 100
  const bytes = String(l.memoryMb * 2 ** 20)
  if (version === 1)
    return {
      'memory/memory.limit_in_bytes': bytes,
      // no swap beyond the limit, so a task over it is killed rather than swapped
      'memory/memory.memsw.limit_in_bytes': bytes,
      'cpu/cpu.cfs_period_us': String(period),
      'cpu/cpu.cfs_quota_us': String(quota),
      'cpu/cpu.shares': String(Math.max(2, Math.round((l.cpu * 1024) / 1000))),
      'pids/pids.max': String(l.pids),
    }
  return {
    'unified/memory.max': bytes,
    'unified/memory.swap.max': '0',
    'unified/cpu.max': `${quota} ${period}`,
    'unified/pids.max': String(l.pids),
  }
}

export class Cgroups {
  constructor(readonly layout: CgroupLayout) {}

  static detect(): Cgroups {
    return new Cgroups(parseCgroupMounts(readFileSync('/proc/self/mounts', 'utf8')))
  }

  /** the task's directory in each hierarchy, by controller name */
  dirs(allocId: string, task: string): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [c, mount] of Object.entries(this.layout.mounts))
      if (mount) out[c] = join(mount, 'plexus', allocId, task)
    return out
  }

  /** the cgroup.procs files a process writes its pid into to join the task's cgroups */
  procsFiles(allocId: string, task: string): string[] {
    return Object.values(this.dirs(allocId, task)).map((d) => join(d, 'cgroup.procs'))
  }

  async create(allocId: string, task: string, limits: Limits): Promise<void> {
    const dirs = this.dirs(allocId, task)
    if (this.layout.version === 2 && this.layout.mounts.unified) {
      // v2 hands controllers down level by level: enable them on every ancestor of the task's cgroup
      const root = this.layout.mounts.unified
      for (const d of [root, join(root, 'plexus'), join(root, 'plexus', allocId)]) {
        await mkdir(d, { recursive: true })
        await writeFile(join(d, 'cgroup.subtree_control'), '+memory +cpu +pids').catch(() => undefined)
      }
    }
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true })
    for (const [file, value] of Object.entries(limitFiles(this.layout.version, limits))) {
      const [controller, name] = file.split('/') as [string, string]
      const dir = dirs[controller]
      if (!dir) continue
      const path = join(dir, name)
      // memsw exists only with swap accounting on; without it there is no swap to bound
      if (name.startsWith('memory.memsw') && !existsSync(path)) continue
      await writeFile(path, value)
    }
  }

  /** Every pid in the task's cgroups (its processes and whatever they forked). */
  async pids(allocId: string, task: string): Promise<number[]> {
    const out = new Set<number>()
    for (const f of this.procsFiles(allocId, task)) {
      const text = await readFile(f, 'utf8').catch(() => '')
      for (const l of text.split('\n')) if (l.trim()) out.add(Number(l))
    }
    return [...out]
  }

  /** How many times the kernel's OOM killer killed a process of the task (its memory limit). */
  async oomKills(allocId: string, task: string): Promise<number> {
    const dirs = this.dirs(allocId, task)
    const file =
      this.layout.version === 1
        ? dirs.memory && join(dirs.memory, 'memory.oom_control')
        : dirs.unified && join(dirs.unified, 'memory.events')
    if (!file) return 0
    const text = await readFile(file, 'utf8').catch(() => '')
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0)
  }

  /** Kills what is left in the task's cgroups, then removes them (and the alloc's level once empty). */
  async destroy(allocId: string, task: string): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const left = await this.pids(allocId, task)
      if (left.length === 0) break
      // membership of the task's cgroup is the proof these are the task's processes
      for (const p of left) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          // gone already
        }
      }
      await sleep(20)
    }
    for (const d of Object.values(this.dirs(allocId, task))) {
      await rmdirRetry(d)
      await rmdir(join(d, '..')).catch(() => undefined)
    }
  }
}

/** rmdir of a cgroup fails with EBUSY for a moment after its last process exited */
async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(dir)
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return
      if (code !== 'EBUSY' || i === 49) throw err
      await sleep(20)
    }
  }
}
