import { CniCode, CniError } from './errors.js'

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const
export type Command = (typeof COMMANDS)[number]

export interface CniEnv {
  command: Command
  containerId: string
  /** path of the container's network namespace; may be empty on DEL */
  netns: string
  ifname: string
  /** CNI_ARGS as key/value pairs */
  args: Record<string, string>
  path: string
}

// Which variables each command needs (as the reference plugins' skel does).
const REQUIRED: Record<string, readonly Command[]> = {
  CNI_CONTAINERID: ['ADD', 'DEL', 'CHECK'],
  CNI_NETNS: ['ADD', 'CHECK'],
  CNI_IFNAME: ['ADD', 'DEL', 'CHECK'],
  CNI_PATH: ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'],
}

// SPEC.md: container ids start alphanumeric, then alphanumerics, "_", "." or "-".
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

/** Linux interface name rules (dev_valid_name): 1-15 bytes, not "." or "..", no "/", ":" or whitespace. */
export function validIfname(name: string): string | undefined {
  if (name.length === 0) return 'is empty'
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 bytes'
  if (name === '.' || name === '..') return 'is not a valid interface name'
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or whitespace'
  return undefined
}

/**
 * Parses CNI_ARGS ("K1=V1;K2=V2"); a pair without "=" is an error. A key given
 * more than once (PLEXUS_LABEL=a=1;PLEXUS_LABEL=b=2) keeps every value, joined by ",".
 */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!text) return out
  for (const pair of text.split(';')) {
    if (pair === '') continue
    const i = pair.indexOf('=')
    if (i <= 0) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS: invalid pair "${pair}" (want KEY=VALUE)`)
    const k = pair.slice(0, i)
    const v = pair.slice(i + 1)
    out[k] = k in out ? `${out[k]},${v}` : v
  }
  return out
}

export function parseCommand(env: NodeJS.ProcessEnv): Command {
  const c = env.CNI_COMMAND
  if (!c) throw new CniError(CniCode.INVALID_ENV, 'required environment variable CNI_COMMAND is missing')
  if (!(COMMANDS as readonly string[]).includes(c)) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_COMMAND "${c}" is not one of ${COMMANDS.join(', ')}`)
  }
  return c as Command
}

/** Reads and validates every CNI_* variable the command needs; names each bad variable. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = parseCommand(env)
  const missing = Object.entries(REQUIRED)
    .filter(([name, cmds]) => cmds.includes(command) && !env[name])
    .map(([name]) => name)
  if (missing.length) {
    throw new CniError(
      CniCode.INVALID_ENV,
      `required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing for ${command}`,
    )
  }
  const containerId = env.CNI_CONTAINERID ?? ''
  if (containerId && !CONTAINER_ID.test(containerId)) {
    throw new CniError(
      CniCode.INVALID_ENV,
      `CNI_CONTAINERID "${containerId}" must start with a letter or digit and contain only letters, digits, "_", "." and "-"`,
    )
  }
  const ifname = env.CNI_IFNAME ?? ''
  const ifProblem = ifname ? validIfname(ifname) : undefined
  if (ifProblem) throw new CniError(CniCode.INVALID_ENV, `CNI_IFNAME "${ifname}" ${ifProblem}`)
  const netns = env.CNI_NETNS ?? ''
  if (netns && !netns.startsWith('/')) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS "${netns}" must be an absolute path`)
  }
  return {
    command,
    containerId,
    netns,
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: env.CNI_PATH ?? '',
  }
}
