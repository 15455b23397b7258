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
import { callAgent } from './lib/client.js'
import { buildAttachRequest, decodeStdin, type NetConf, parseNetConf } from './lib/config.js'
import { type CniEnv, parseCommand, parseEnv } from './lib/env.js'
import { CniCode, CniError } from './lib/errors.js'
import { type CniResult, convertResult, mergeResults } from './lib/result.js'
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

/** The container's namespace must exist for ADD and CHECK; a missing one means "unknown container" (3). */
function ensureNetns(fs: Fs, path: string): void {
  try {
    fs.statSync(path)
  } catch (err) {
    throw new CniError(
      CniCode.UNKNOWN_CONTAINER,
      `network namespace ${path} does not exist`,
      (err as NodeJS.ErrnoException).code ?? '',
    )
  }
}

async function cmdAdd(conf: NetConf, env: CniEnv): Promise<Record<string, unknown>> {
  const req = buildAttachRequest(conf, env)
  const ours = await callAgent<CniResult>(conf.socket, 'POST', '/v1/cni/add', req)
  return convertResult(mergeResults(conf.prevResult, ours), conf.cniVersion)
}

async function cmdDel(conf: NetConf, env: CniEnv): Promise<void> {
  await callAgent(conf.socket, 'POST', '/v1/cni/del', {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
  })
}

async function cmdCheck(conf: NetConf, env: CniEnv): Promise<void> {
  if (!conf.prevResult)
    throw new CniError(CniCode.INVALID_CONFIG, 'CHECK needs prevResult in the network config')
  await callAgent(conf.socket, 'POST', '/v1/cni/check', {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
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

async function cmdGc(conf: NetConf): Promise<void> {
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
  const raw = decodeStdin(stdin)
  if (typeof raw.cniVersion === 'string' && isSupported(raw.cniVersion)) errorVersion = raw.cniVersion
  const conf = parseNetConf(raw)
  requireVersionFor(command, conf.cniVersion)
  switch (command) {
    case 'ADD':
      ensureNetns(fs, env.netns)
      return cmdAdd(conf, env)
    case 'DEL':
      return cmdDel(conf, env)
    case 'CHECK':
      ensureNetns(fs, env.netns)
      return cmdCheck(conf, env)
    case 'STATUS':
      return cmdStatus(conf)
    case 'GC':
      return cmdGc(conf)
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
