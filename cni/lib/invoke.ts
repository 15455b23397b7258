// One CNI invocation, whoever runs it: the Node plugin (cni/plexus.ts, with
// the environment and stdin of its own process and calls over the agent's
// socket) or the agent itself for the native front end (cni/front/, through
// POST /v1/cni/invoke, with calls made in-process). The same parsing,
// validation and result conversion either way, so both print the same bytes.
import type { AttachReply, CheckRequest, DetachRequest, GcRequest, NetnsHandle } from './agent-api.js'
import { AgentUnreachable } from './client.js'
import {
  buildAttachRequest,
  decodeStdin,
  type NetConf,
  parseNetConf,
  parseTeardownConf,
  type TeardownConf,
} from './config.js'
import { type CniEnv, parseCommand, parseEnv } from './env.js'
import { CniCode, CniError } from './errors.js'
import { convertResult, mergeResults } from './result.js'
import { CURRENT_VERSION, isSupported, requireVersionFor, versionInfo } from './version.js'

/** What an invocation needs of where it runs. */
export interface InvokeContext {
  /** the CNI_* variables */
  env: Record<string, string | undefined>
  /** the network configuration; throws CniError when it cannot be read */
  stdin(): string
  /** one request to the agent; throws CniError (AgentUnreachable when nobody answered) */
  call<T>(
    socket: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<T>
  /** the container's namespace held open for the agent (ADD, CHECK) */
  openNetns(path: string): NetnsHandle
  /** logged where the runtime keeps the plugin's stderr */
  warn(what: string): void
  /** DEL with no agent: what the plugin does alone (absent where the agent itself runs the invocation) */
  delWithoutAgent?(conf: TeardownConf, env: CniEnv, err: AgentUnreachable): void
}

/** What the runtime sees: the exit status and the JSON printed on stdout (none for DEL, CHECK, STATUS, GC). */
export interface InvokeOutcome {
  exitCode: 0 | 1
  stdout: string
}

async function cmdAdd(ctx: InvokeContext, conf: NetConf, env: CniEnv): Promise<Record<string, unknown>> {
  const req = buildAttachRequest(conf, env)
  req.netnsHandle = ctx.openNetns(env.netns)
  const ours = await ctx.call<AttachReply>(conf.socket, 'POST', '/v1/cni/add', req)
  return convertResult(mergeResults(conf.prevResult, ours), conf.cniVersion)
}

/** Releases by container id and interface whatever else the input holds. */
async function cmdDel(ctx: InvokeContext, conf: TeardownConf, env: CniEnv): Promise<void> {
  const key = { containerId: env.containerId, ifname: env.ifname }
  try {
    await ctx.call(conf.socket, 'POST', '/v1/cni/del', { ...key, netns: env.netns } satisfies DetachRequest)
  } catch (err) {
    if (!(err instanceof AgentUnreachable) || !ctx.delWithoutAgent) throw err
    ctx.delWithoutAgent(conf, env, err)
  }
}

async function cmdCheck(ctx: InvokeContext, conf: NetConf, env: CniEnv): Promise<void> {
  if (!conf.prevResult)
    throw new CniError(CniCode.INVALID_CONFIG, 'CHECK needs prevResult in the network config')
  await ctx.call(conf.socket, 'POST', '/v1/cni/check', {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    netnsHandle: ctx.openNetns(env.netns),
    prevResult: conf.prevResult,
  } satisfies CheckRequest)
}

async function cmdStatus(ctx: InvokeContext, conf: NetConf): Promise<void> {
  try {
    await ctx.call(conf.socket, 'GET', '/v1/cni/status', undefined, 5_000)
  } catch (err) {
    // STATUS has its own codes: an agent we cannot reach cannot take containers (50).
    if (err instanceof CniError && err.code === CniCode.TRY_AGAIN_LATER) {
      throw new CniError(CniCode.NOT_AVAILABLE, err.msg, err.details)
    }
    throw err
  }
}

async function cmdGc(ctx: InvokeContext, conf: TeardownConf): Promise<void> {
  // Releasing "everything not valid" from a list we could not read would release everything.
  if (conf.validAttachments === null || !conf.name) {
    ctx.warn('GC: released nothing, the network name or the valid attachments could not be read')
    return
  }
  requireVersionFor('GC', conf.cniVersion)
  await ctx.call(conf.socket, 'POST', '/v1/cni/gc', {
    network: conf.name,
    validAttachments: conf.validAttachments ?? [],
  } satisfies GcRequest)
}

/** Runs one command; errors are reported in the config's cniVersion once it is known. */
export async function invoke(ctx: InvokeContext): Promise<InvokeOutcome> {
  let errorVersion = CURRENT_VERSION
  const run = async (): Promise<unknown> => {
    const command = parseCommand(ctx.env)
    const stdin = ctx.stdin()
    if (command === 'VERSION') return versionInfo()
    const env = parseEnv(ctx.env)
    if (command === 'DEL' || command === 'GC') {
      const conf = parseTeardownConf(stdin)
      errorVersion = conf.cniVersion
      if (conf.skipped.length)
        ctx.warn(`${command}: ignored what it could not read: ${conf.skipped.join('; ')}`)
      return command === 'DEL' ? cmdDel(ctx, conf, env) : cmdGc(ctx, conf)
    }
    const raw = decodeStdin(stdin)
    if (typeof raw.cniVersion === 'string' && isSupported(raw.cniVersion)) errorVersion = raw.cniVersion
    const conf = parseNetConf(raw)
    requireVersionFor(command, conf.cniVersion)
    switch (command) {
      case 'ADD':
        return cmdAdd(ctx, conf, env)
      case 'CHECK':
        return cmdCheck(ctx, conf, env)
      case 'STATUS':
        return cmdStatus(ctx, conf)
    }
  }
  try {
    const out = await run()
    return { exitCode: 0, stdout: out === undefined ? '' : `${JSON.stringify(out)}\n` }
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(CniCode.INTERNAL, `plexus plugin failed: ${(err as Error).message}`)
    return { exitCode: 1, stdout: `${JSON.stringify(e.toJSON(errorVersion))}\n` }
  }
}
