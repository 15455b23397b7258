// The `plexus` CNI plugin. A thin client: it validates what the runtime sent
// (stdin + CNI_* environment), hands the work to the host's plexusd over its
// unix socket, and prints the result in the CNI version the runtime asked for.
// Keep imports light: every container start pays for this process's startup.
//
// Node built-ins come from process.getBuiltinModule (Node 20.16+): the bundle
// then has no `require`, `import` statement or `import()`, so node runs it the
// same whether it sits under this repo's "type": "module" or alone in
// /opt/cni/bin (read as CommonJS), and never starts the ESM loader for a
// dynamic import (3 ms of every container start).
import type { NetnsHandle } from './lib/agent-api.js'
import { AgentUnreachable, callAgent } from './lib/client.js'
import {
  buildAttachRequest,
  decodeStdin,
  type NetConf,
  parseNetConf,
  parseTeardownConf,
  type TeardownConf,
} from './lib/config.js'
import { type CniEnv, parseCommand, parseEnv } from './lib/env.js'
import { CniCode, CniError } from './lib/errors.js'
import { type CniResult, convertResult, mergeResults } from './lib/result.js'
import { removeInterface, writeSpool } from './lib/spool.js'
import { CURRENT_VERSION, isSupported, requireVersionFor, versionInfo } from './lib/version.js'

type Fs = typeof import('node:fs')

function readStdin(fs: Fs): string {
  try {
    return fs.readFileSync(0, 'utf8')
  } catch (err) {
    // EAGAIN: stdin is a terminal or non-blocking pipe with nothing written: no config
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return ''
    throw new CniError(CniCode.IO_FAILURE, `reading stdin failed: ${(err as Error).message}`)
  }
}

/** Logged where the runtime keeps the plugin's stderr (containerd's and podman's logs). */
function warn(fs: Fs, what: string): void {
  fs.writeSync(2, `plexus: ${what}\n`)
}

/**
 * Opens the container's namespace for ADD and CHECK: a missing one means
 * "unknown container" (3). The agent reaches it through this process's
 * descriptor, so a runtime in another mount namespace (kind, k3s in docker,
 * `ip netns exec`) works although the agent cannot see CNI_NETNS. The
 * descriptor stays open until the process exits, after the agent answered.
 */
function openNetns(fs: Fs, path: string): NetnsHandle {
  let fd: number
  try {
    fd = fs.openSync(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    throw new CniError(
      CniCode.UNKNOWN_CONTAINER,
      code === 'ENOENT' ? `network namespace ${path} does not exist` : `cannot open ${path}: ${code}`,
      code,
    )
  }
  return { pid: process.pid, fd, ino: fs.fstatSync(fd).ino }
}

async function cmdAdd(fs: Fs, conf: NetConf, env: CniEnv): Promise<Record<string, unknown>> {
  const req = buildAttachRequest(conf, env)
  req.netnsHandle = openNetns(fs, env.netns)
  const ours = await callAgent<CniResult>(conf.socket, 'POST', '/v1/cni/add', req)
  return convertResult(mergeResults(conf.prevResult, ours), conf.cniVersion)
}

/**
 * Releases by container id and interface whatever else the input holds. With
 * no agent to answer, the plugin removes the interface itself and spools the
 * rest for the agent (lib/spool.ts), so the runtime's teardown goes on.
 */
async function cmdDel(fs: Fs, conf: TeardownConf, env: CniEnv): Promise<void> {
  const key = { containerId: env.containerId, ifname: env.ifname }
  try {
    await callAgent(conf.socket, 'POST', '/v1/cni/del', { ...key, netns: env.netns })
  } catch (err) {
    if (!(err instanceof AgentUnreachable)) throw err
    const file = writeSpool(fs, conf.socket, { version: 1, ...key, netns: env.netns, at: Date.now() })
    warn(
      fs,
      `DEL ${env.containerId}/${env.ifname}: ${err.msg}; ${removeInterface(fs, env)}; the agent releases the rest when it starts (${file})`,
    )
  }
}

async function cmdCheck(fs: Fs, conf: NetConf, env: CniEnv): Promise<void> {
  if (!conf.prevResult)
    throw new CniError(CniCode.INVALID_CONFIG, 'CHECK needs prevResult in the network config')
  await callAgent(conf.socket, 'POST', '/v1/cni/check', {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    netnsHandle: openNetns(fs, env.netns),
    prevResult: conf.prevResult,
  })
}

async function cmdStatus(conf: NetConf): Promise<void> {
  try {
    await callAgent(conf.socket, 'GET', '/v1/cni/status', undefined, 5_000)
  } catch (err) {
    // STATUS has its own codes: an agent we cannot reach cannot take containers (50).
    if (err instanceof CniError && err.code === CniCode.TRY_AGAIN_LATER) {
      throw new CniError(CniCode.NOT_AVAILABLE, err.msg, err.details)
    }
    throw err
  }
}

async function cmdGc(fs: Fs, conf: TeardownConf): Promise<void> {
  // Releasing "everything not valid" from a list we could not read would release everything.
  if (conf.validAttachments === null || !conf.name) {
    warn(fs, 'GC: released nothing, the network name or the valid attachments could not be read')
    return
  }
  requireVersionFor('GC', conf.cniVersion)
  await callAgent(conf.socket, 'POST', '/v1/cni/gc', {
    network: conf.name,
    validAttachments: conf.validAttachments ?? [],
  })
}

/** Errors are reported in the config's cniVersion once it is known. */
let errorVersion = CURRENT_VERSION

async function run(fs: Fs): Promise<unknown> {
  const command = parseCommand(process.env)
  const stdin = readStdin(fs)
  if (command === 'VERSION') return versionInfo()
  const env = parseEnv(process.env)
  if (command === 'DEL' || command === 'GC') {
    const conf = parseTeardownConf(stdin)
    errorVersion = conf.cniVersion
    if (conf.skipped.length)
      warn(fs, `${command}: ignored what it could not read: ${conf.skipped.join('; ')}`)
    return command === 'DEL' ? cmdDel(fs, conf, env) : cmdGc(fs, conf)
  }
  const raw = decodeStdin(stdin)
  if (typeof raw.cniVersion === 'string' && isSupported(raw.cniVersion)) errorVersion = raw.cniVersion
  const conf = parseNetConf(raw)
  requireVersionFor(command, conf.cniVersion)
  switch (command) {
    case 'ADD':
      return cmdAdd(fs, conf, env)
    case 'CHECK':
      return cmdCheck(fs, conf, env)
    case 'STATUS':
      return cmdStatus(conf)
  }
}

async function main(): Promise<void> {
  const fs = process.getBuiltinModule('node:fs')
  const print = (data: unknown) => fs.writeSync(1, `${JSON.stringify(data)}\n`)
  try {
    const out = await run(fs)
    if (out !== undefined) print(out)
    process.exit(0)
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(CniCode.INTERNAL, `plexus plugin failed: ${(err as Error).message}`)
    print(e.toJSON(errorVersion))
    process.exit(1)
  }
}

void main()
