#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=2 --heap-growing-percent=100
// How plexusd runs: every launcher executes this file, so the line above holds
// for all of them. In bench/converge (10 agents on 2 cores) an agent held up to
// 174 MB with Node's defaults: V8's young generation grown to 16 MB semi-spaces
// (34 MB resident, a few MB live), an old generation allowed to grow to several
// times its live size between collections, and glibc's per-thread malloc
// arenas (V8 and libuv start eight threads). With 2 MB semi-spaces, the old
// generation grown by at most 2x, and two arenas: 120-147 MB, write p99 and DNS
// throughput unchanged. Tighter settings (--optimize-for-size, growth 1.5x)
// reached 115 MB but pushed the write p99 past 500 ms: 10 agents collecting
// garbage more often on two cores. One arena instead of two (the second served
// V8's and libuv's worker threads): 10 idle agents of the fixture peaked at
// 103-104 MB in four runs against 107-111 MB in six, idle CPU the same within
// noise; bench/converge's agent RSS max 104.9-108.7 MB in three full runs
// against 112.3 and 112.5 (2026-12-06).
import '../lib/polyfill.js'
import { Command, CommanderError, Option } from 'commander'
import { clusterMetrics } from '../cluster/metrics.js'
import { guardStrayStreamErrors } from '../cluster/stray-errors.js'
import { cleanupHost, formatCleanup } from '../datapath/cleanup.js'
import { errorMessage, isPlexusError } from '../lib/errors.js'
import { configureFaults } from '../lib/faults.js'
import { createLogger, type LogLevel } from '../lib/log.js'
import { VERSION } from '../lib/version.js'
import { Agent } from './agent.js'
import { type AgentConfig, loadConfigFile, resolveConfig } from './config.js'

const collect = (v: string, acc: string[]) => [...acc, v]

function parseLabel(v: string, acc: Record<string, string>): Record<string, string> {
  const i = v.indexOf('=')
  if (i <= 0) throw new CommanderError(2, 'plexusd.label', `--label wants key=value, got "${v}"`)
  return { ...acc, [v.slice(0, i)]: v.slice(i + 1) }
}

interface Flags {
  config?: string
  name?: string
  stateDir?: string
  runDir?: string
  socket?: string
  extraSocket: string[]
  listen: string[]
  announce: string[]
  bootstrap: string[]
  clusterKeyFile?: string
  underlayAddress?: string
  underlayInterface?: string
  logLevel?: LogLevel
  label: Record<string, string>
  cleanup?: boolean
}

function flagsToConfig(f: Flags): Partial<AgentConfig> {
  return {
    name: f.name,
    stateDir: f.stateDir,
    runDir: f.runDir,
    logLevel: f.logLevel,
    underlayAddress: f.underlayAddress,
    underlayInterface: f.underlayInterface,
    labels: f.label,
    // limits come from the file or the defaults (resolveConfig merges api field by field)
    api: { socket: f.socket as string, extraSockets: f.extraSocket } as AgentConfig['api'],
    cluster: {
      listen: f.listen.length ? f.listen : (undefined as unknown as string[]),
      announce: f.announce.length ? f.announce : (undefined as unknown as string[]),
      bootstrap: f.bootstrap.length ? f.bootstrap : (undefined as unknown as string[]),
      keyFile: f.clusterKeyFile,
      // timers come from the file or the defaults (resolveConfig merges cluster field by field)
    } as AgentConfig['cluster'],
  }
}

const program = new Command('plexusd')
  .description('Plexus host agent: overlay network, replicated store, service discovery')
  .version(VERSION)
  .option('-c, --config <file>', 'config file (JSON, comments allowed)')
  .option('--name <name>', 'host name in the cluster (default: hostname)')
  .option('--state-dir <dir>', 'persistent state (default /var/lib/plexus)')
  .option('--run-dir <dir>', 'runtime files: API socket, subnet.env (default /run/plexus)')
  .option('--socket <path>', 'API unix socket (default <run-dir>/plexusd.sock)')
  .option('--extra-socket <path>', 'another API socket (repeatable)', collect, [])
  .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect, [])
  .option('--announce <multiaddr>', 'libp2p address to announce (repeatable)', collect, [])
  .option('--bootstrap <multiaddr>', 'member to join through (repeatable)', collect, [])
  .option('--cluster-key-file <file>', 'pre-shared cluster key file')
  .option('--underlay-address <ip>', 'address other hosts reach this one at')
  .option('--underlay-interface <ifname>', 'underlay interface')
  .addOption(
    new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']),
  )
  .option('--label <key=value>', 'host label (repeatable)', parseLabel, {})
  .option('--cleanup', 'remove every device, route and firewall rule Plexus made on this host, then exit')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })

async function main(): Promise<void> {
  try {
    program.parse(process.argv)
  } catch (err) {
    const code = (err as CommanderError).exitCode ?? 2
    process.exit(code === 0 ? 0 : 2)
  }
  const flags = program.opts<Flags>()
  if (flags.cleanup) {
    // needs no config: `make uninstall` runs it whatever state the config is in
    const report = await cleanupHost()
    process.stdout.write(formatCleanup(report))
    process.exit(report.errors.length ? 1 : 0)
  }
  let config: AgentConfig
  let faults: string[]
  try {
    const file = flags.config ? loadConfigFile(flags.config) : {}
    config = resolveConfig(file, flagsToConfig(flags))
    faults = configureFaults(process.env.PLEXUS_TEST_FAULTS)
  } catch (err) {
    process.stderr.write(`plexusd: ${errorMessage(err)}\n`)
    process.exit(2)
  }
  const logger = createLogger({ level: config.logLevel, host: config.name })
  // A death must leave a line saying why: log what would otherwise kill the
  // process silently, then exit non-zero once the line is written.
  const die = (kind: string) => (err: unknown) => {
    logger.fatal({ err }, `plexusd: ${kind}: ${errorMessage(err)}`)
    logger.flush(() => process.exit(70))
    setTimeout(() => process.exit(70), 1000).unref()
  }
  process.on('uncaughtException', die('uncaught exception'))
  process.on('unhandledRejection', die('unhandled rejection'))
  if (faults.length) logger.warn({ faults }, 'test fault points active (PLEXUS_TEST_FAULTS)')
  const agent = new Agent(config, logger)
  guardStrayStreamErrors(
    process,
    (err) => {
      clusterMetrics(agent.components.metrics).strayErrors.inc()
      logger.error({ err }, 'error escaped a cluster connection; logged, the agent carries on')
    },
    (err) => {
      logger.fatal({ err }, `plexusd crashed: ${errorMessage(err)}`)
      logger.flush()
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
      process.exit(1)
    },
  )
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down')
    agent.stop().then(
      () => {
        logger.flush()
        process.exit(0)
      },
      (err) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
  try {
    await agent.start()
  } catch (err) {
    logger.fatal(
      { err, code: isPlexusError(err) ? err.code : undefined },
      `plexusd failed to start: ${errorMessage(err)}`,
    )
    logger.flush()
    process.stderr.write(`plexusd: ${errorMessage(err)}\n`)
    process.exit(1)
  }
}

void main()
