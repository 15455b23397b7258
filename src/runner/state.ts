// What the runner keeps on this host's disk, one directory per allocation:
//   <stateDir>/runner/<allocId>/alloc.json   the allocation as the runner left it (network, tasks, handles)
//   <stateDir>/runner/<allocId>/<task>/      the task's pid and exit files and its logs/
// A restarted agent reads these and adopts what still runs: the store says
// what should run, this says what this host did about it.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import type { AllocStatus } from '../scheduler/records.js'
import type { GroupSpec } from '../scheduler/spec.js'
import type { TaskRecord } from './lifecycle.js'
import type { Iface } from './network.js'

/** an interface CNI ADD made, with its result */
export interface Attached {
  iface: Iface
  result: unknown
}

export interface LocalAlloc {
  id: string
  job: string
  group: string
  /** the group as it was when the allocation started: what its tasks run, how they stop */
  spec: GroupSpec
  /** name of its network namespace (network.ts) */
  netns: string
  /**
   * present once CNI ADD succeeded on every interface: eth0's result and address, and the further
   * interfaces' (eth1, eth2, … of the group's `networks`), each handed to its DEL; an adopted allocation
   * is never added twice
   */
  cni?: { result: unknown; address?: string; further?: Attached[] }
  tasks: TaskRecord[]
  /** why the network could not be attached yet */
  setupError?: string
  /** set once the allocation ended for good: nothing of it is started again */
  final?: { status: Extract<AllocStatus, 'complete' | 'failed' | 'lost'>; reason?: string }
  /** its processes, cgroups and network are gone (after `final`, or before the directory goes) */
  released: boolean
}

export const runnerDir = (stateDir: string): string => join(stateDir, 'runner')
export const allocDir = (stateDir: string, id: string): string => join(runnerDir(stateDir), id)
export const taskDir = (stateDir: string, id: string, task: string): string =>
  join(allocDir(stateDir, id), task)

export async function saveAlloc(stateDir: string, a: LocalAlloc): Promise<void> {
  await mkdir(allocDir(stateDir, a.id), { recursive: true, mode: 0o700 })
  await writeFileAtomic(join(allocDir(stateDir, a.id), 'alloc.json'), `${JSON.stringify(a)}\n`, 0o600)
}

/** Every allocation this host's runner recorded (a directory without a readable record is skipped and reported). */
export async function loadAllocs(stateDir: string): Promise<{ allocs: LocalAlloc[]; unreadable: string[] }> {
  const names = await readdir(runnerDir(stateDir)).catch(() => [] as string[])
  const allocs: LocalAlloc[] = []
  const unreadable: string[] = []
  for (const n of names) {
    try {
      const a = JSON.parse(await readFile(join(allocDir(stateDir, n), 'alloc.json'), 'utf8')) as LocalAlloc
      if (a.id === n && Array.isArray(a.tasks)) allocs.push(a)
      else unreadable.push(n)
    } catch {
      unreadable.push(n)
    }
  }
  return { allocs, unreadable }
}

export async function removeAlloc(stateDir: string, id: string): Promise<void> {
  await rm(allocDir(stateDir, id), { recursive: true, force: true })
}
