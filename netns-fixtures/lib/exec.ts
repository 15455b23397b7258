// Where `cluster exec` runs a command: the namespace of a host, a container or the
// underlay, and the environment it gets there. The fixture's `exec` command and the
// tests' Cluster handle (test/helpers/fixture.ts) both take it from here, so a test runs
// a command exactly as `cluster exec` does without starting the fixture's CLI each time
// (a node start-up per call, half a second on a loaded machine).
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ClusterState, type HostState, loadCluster, loadCtr, underlayNs } from './state.js'

/** dist/bin: plexctl for commands run in a host */
const BIN_DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin')

/** Thrown for what the user asked wrong (the fixture's CLI exits 2 with the message). */
export class FixtureError extends Error {}

export function need(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new FixtureError(msg)
}

export function requireCluster(name: string): ClusterState {
  const c = loadCluster(name)
  need(c, `no cluster "${name}" (see: cluster ls)`)
  return c
}

export function hostOf(c: ClusterState, host: string): HostState {
  const h = c.hosts.find((x) => x.name === host)
  need(h, `cluster "${c.name}" has no host "${host}" (hosts: ${c.hosts.map((x) => x.name).join(', ')})`)
  return h
}

/** The environment of a command run in the cluster: plexctl on PATH and, in a host, that host's socket. */
export function envFor(c: ClusterState, h?: HostState): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${BIN_DIR}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    ...(h ? { PLEXUS_SOCKET: h.socket, PLEXUS_FIXTURE_HOST: h.name } : {}),
    PLEXUS_FIXTURE: c.name,
  }
}

export interface ExecWhere {
  host?: string
  ctr?: string
  underlay?: boolean
}

/** The namespace to enter and the environment to run with, for exactly one of host, container or underlay. */
export function execTarget(name: string, where: ExecWhere): { ns: string; env: NodeJS.ProcessEnv } {
  const c = requireCluster(name)
  need(
    [where.host, where.ctr, where.underlay].filter(Boolean).length === 1,
    'give exactly one of --host, --ctr, --underlay',
  )
  if (where.host) {
    const h = hostOf(c, where.host)
    return { ns: h.ns, env: envFor(c, h) }
  }
  if (where.ctr) {
    const ctr = loadCtr(c.name, where.ctr)
    need(ctr, `no container "${where.ctr}" in cluster ${c.name}`)
    return { ns: ctr.ns, env: envFor(c) }
  }
  return { ns: underlayNs(c.name), env: envFor(c) }
}
