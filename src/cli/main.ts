#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { isPlexusError } from '../lib/errors.js'
import { VERSION } from '../lib/version.js'
import { ApiError, createClient, type RemoteTarget, UnreachableError } from './client.js'
import { registerAcl } from './commands/acl.js'
import { registerAllocs } from './commands/allocs.js'
import { registerCluster } from './commands/cluster.js'
import { registerDns } from './commands/dns.js'
import { registerDoctor } from './commands/doctor.js'
import { registerEndpoints } from './commands/endpoints.js'
import { registerExplain } from './commands/explain.js'
import { registerHosts } from './commands/hosts.js'
import { registerInspect } from './commands/inspect.js'
import { registerJob } from './commands/job.js'
import { registerKeys } from './commands/keys.js'
import { registerKv } from './commands/kv.js'
import { registerLink } from './commands/link.js'
import { registerNetwork } from './commands/network.js'
import { registerNetworks } from './commands/networks.js'
import { registerPort } from './commands/port.js'
import { registerRoutes } from './commands/routes.js'
import { registerService } from './commands/service.js'
import { registerServices } from './commands/services.js'
import { registerStatus } from './commands/status.js'
import { registerSubnets } from './commands/subnets.js'
import { registerTemplate } from './commands/template.js'
import { registerTls } from './commands/tls.js'
import { registerTrace } from './commands/trace.js'
import { registerTraffic } from './commands/traffic.js'
import { registerUi } from './commands/ui.js'
import type { CliContext, RegisterCommand } from './context.js'
import type { OutputFormat } from './output.js'

// Exit codes: 0 ok, 1 error (agent unreachable or refused the request; doctor: a check failed), 2 usage.
const EXIT_ERROR = 1
const EXIT_USAGE = 2

const commands: RegisterCommand[] = [
  registerStatus,
  registerKv,
  registerKeys,
  registerAcl,
  registerTls,
  registerHosts,
  registerCluster,
  registerNetwork,
  registerNetworks,
  registerSubnets,
  registerTraffic,
  registerJob,
  registerAllocs,
  registerRoutes,
  registerExplain,
  registerEndpoints,
  registerInspect,
  registerLink,
  registerPort,
  registerService,
  registerServices,
  registerDns,
  registerDoctor,
  registerTrace,
  registerTemplate,
  registerUi,
]

const program = new Command('plexctl')
  .description('Inspect and drive the Plexus agent on this host')
  .version(VERSION)
  .option(
    '-s, --socket <path>',
    'plexusd API socket',
    process.env.PLEXUS_SOCKET ?? '/run/plexus/plexusd.sock',
  )
  .option(
    '-H, --addr <url>',
    "a remote agent's operator API (api.listen), e.g. https://10.0.0.5:7375 (default $PLEXUS_ADDR); needs --token-file",
    process.env.PLEXUS_ADDR,
  )
  .option(
    '--token-file <file>',
    'file holding the token for -H (default $PLEXUS_TOKEN_FILE)',
    process.env.PLEXUS_TOKEN_FILE,
  )
  .option(
    '--ca-file <file>',
    'CA certificate to trust for an https -H (default $PLEXUS_CA_FILE)',
    process.env.PLEXUS_CA_FILE,
  )
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .showHelpAfterError()
  .exitOverride()

interface GlobalFlags {
  socket: string
  addr?: string
  tokenFile?: string
  caFile?: string
}

/** the unix socket, or with -H the remote agent with its token and CA */
function target(f: GlobalFlags): string | RemoteTarget {
  // inside a container (a task, a linked container) the agent is its application API at
  // PLEXUS_HTTP_ADDR (host:port, as CONSUL_HTTP_ADDR); the caller is known by its address
  const app = process.env.PLEXUS_HTTP_ADDR
  if (!f.addr && app && !existsSync(f.socket)) return { url: new URL(`http://${app}`) }
  if (!f.addr) return f.socket
  let url: URL
  try {
    url = new URL(f.addr)
  } catch {
    throw new Error(`-H: "${f.addr}" is not a URL like https://10.0.0.5:7375`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new Error(`-H: ${url.protocol} is not http: or https:`)
  return {
    url,
    ...(f.tokenFile ? { token: readFileSync(f.tokenFile, 'utf8').trim() } : {}),
    ...(f.caFile ? { ca: readFileSync(f.caFile) } : {}),
  }
}

const ctx: CliContext = {
  client: () => createClient(target(program.opts<GlobalFlags>())),
  format: () => program.opts<{ output: OutputFormat }>().output,
  print: (text) => process.stdout.write(text),
}

for (const register of commands) register(program, ctx)

// Every (nested) subcommand throws on usage errors instead of exiting, so they all exit 2.
function overrideExits(cmd: Command): void {
  for (const c of cmd.commands) {
    c.exitOverride().showHelpAfterError()
    overrideExits(c)
  }
}
overrideExits(program)

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv)
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.exitCode === 0 ||
        ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)
      )
        return 0
      return EXIT_USAGE
    }
    if (err instanceof UnreachableError) {
      process.stderr.write(`plexctl: ${err.message}\n`)
      return EXIT_ERROR
    }
    if (err instanceof ApiError || isPlexusError(err)) {
      process.stderr.write(`plexctl: ${err.message} (${err.code})\n`)
      return EXIT_ERROR
    }
    process.stderr.write(`plexctl: ${(err as Error).message}\n`)
    return EXIT_ERROR
  }
}

main().then((code) => {
  // a command may set 1 itself for an answer that is bad news (doctor finding a failure)
  process.exitCode = code === 0 ? (process.exitCode ?? 0) : code
})
