// The WireGuard device as a process: wireguard-go (the userspace
// implementation Debian packages; this kernel has no `wireguard` link type)
// started, supervised and configured over its UAPI socket by the agent.
//
// Socket per host: wireguard-go always puts its socket at
// /var/run/wireguard/<ifname>.sock, a path every fixture host (a network
// namespace on one machine) would share. So it runs in a mount namespace of
// its own (`unshare --mount`, private propagation) where the host's
// `<runDir>/wireguard` is bind-mounted on /var/run/wireguard: the socket is
// `<runDir>/wireguard/plexus-wg.sock`, reachable from the agent, and two
// hosts never clash. Nothing is mounted in the agent's own namespace.
//
// The process outlives the agent (own process group, output to a file, not a
// pipe): a restarted agent finds the socket answering and adopts the device
// with its sessions, so traffic does not stop. A device that dies is started
// again by the next pass (logged, counted), with a back-off when it dies young.
import { type ChildProcess, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage, PlexusError } from '../../../lib/errors.js'
import type { Logger } from '../../../lib/log.js'
import { isAlive, procStartTime, signalOwn } from '../../../lib/proc.js'
import type { DesiredWireguard } from '../../model.js'
import type { HostKeys } from './keys.js'
import { type DevicePlan, type DeviceState, getDevice, planDevice, uapiCall } from './uapi.js'

export const WIREGUARD_GO = 'wireguard-go'
/** where wireguard-go puts its socket, whatever we want (see above) */
const SYSTEM_SOCKET_DIR = '/var/run/wireguard'
const BIND_AND_EXEC = `mkdir -p ${SYSTEM_SOCKET_DIR} && mount --bind "$1" ${SYSTEM_SOCKET_DIR} && exec "$2" -f "$3"`
/** a device that dies younger than this was not healthy: the next start waits (1 s, doubling to 30 s) */
const HEALTHY_AFTER_MS = 5000
const MAX_BACKOFF_MS = 30_000

export interface WireguardStatus {
  implementation: 'wireguard-go'
  ifname: string
  socket: string
  pid?: number
  /** found running at start (an agent restart) rather than started by this agent */
  adopted: boolean
  /** times the device was found dead and started again */
  restarts: number
  publicKey?: string
  /** the newest key rotation (config/wireguard-rotation) this host took up */
  keyGeneration?: number
  /** while a rotation is under way (between its two phases): the key announced next */
  nextPublicKey?: string
  listenPort?: number
  peers: DeviceState['peers']
}

/** the key part of the status: the key in use, and the rotation's */
function keyStatus(keys: HostKeys): Pick<WireguardStatus, 'publicKey' | 'keyGeneration' | 'nextPublicKey'> {
  const { generation, publicKey, nextPublicKey } = keys
  return {
    ...(publicKey ? { publicKey } : {}),
    ...(generation === undefined ? {} : { keyGeneration: generation }),
    ...(nextPublicKey ? { nextPublicKey } : {}),
  }
}

export interface WireguardDriverOptions {
  /** this host's key pair (and its rotation's state) in the state dir */
  keys: HostKeys
  runDir: string
  logger: Logger
  /** the device process died: schedule a pass (it starts the device again) */
  onExit: () => void
  /** counts restarts (plexus_datapath_wireguard_restarts_total) */
  onRestart: () => void
  binary?: string
}

/** the device's process: its pid file says both, so a reused pid is never taken for it */
interface DeviceProc {
  pid: number
  startTime: number
}

const alive = (p: DeviceProc | undefined): p is DeviceProc => p !== undefined && isAlive(p.pid, p.startTime)

export class WireguardDriver {
  private child?: ChildProcess
  private proc?: DeviceProc
  private adopted = false
  private restarts = 0
  private startedAt = 0
  private backoffMs = 0
  private notBefore = 0
  private watch?: NodeJS.Timeout
  private last?: DeviceState
  private ifname?: string
  private readonly log: Logger

  constructor(private readonly o: WireguardDriverOptions) {
    this.log = o.logger.child({ component: 'wireguard' })
  }

  get dir(): string {
    return join(this.o.runDir, 'wireguard')
  }

  socketOf(ifname: string): string {
    return join(this.dir, `${ifname}.sock`)
  }

  private pidFile(ifname: string): string {
    return join(this.dir, `${ifname}.pid`)
  }

  /** Makes sure the device's process runs and answers on its socket: adopts a running one, else starts one. */
  async ensure(ifname: string): Promise<void> {
    this.ifname = ifname
    const socket = this.socketOf(ifname)
    if (await this.answers(socket)) {
      if (this.proc === undefined) this.adopt(ifname)
      return
    }
    if (alive(this.proc)) {
      // running but deaf: a wedged device is replaced
      this.log.warn(
        { pid: this.proc.pid },
        `${WIREGUARD_GO} for ${ifname} does not answer on ${socket}: restarting it`,
      )
      signalOwn(this.proc.pid, this.proc.startTime, 'SIGKILL')
    }
    if (this.proc !== undefined || this.adopted) this.lost(`${ifname} was not answering`)
    const wait = this.notBefore - Date.now()
    if (wait > 0)
      throw new PlexusError(
        'PLX_WG_DEVICE_DOWN',
        `${ifname} died young; starting it again in ${Math.ceil(wait / 1000)} s`,
      )
    await this.spawn(ifname)
  }

  private async answers(socket: string): Promise<boolean> {
    if (!existsSync(socket)) return false
    try {
      await uapiCall(socket, 'get=1\n\n', 1000)
      return true
    } catch {
      return false
    }
  }

  /** a device left running by an earlier agent: watch its process (not our child, so polled) */
  private adopt(ifname: string): void {
    this.adopted = true
    const proc = this.readPidFile(ifname)
    if (alive(proc)) {
      this.proc = proc
      this.watch = setInterval(() => {
        if (this.proc === proc && !isAlive(proc.pid, proc.startTime))
          this.died(`adopted ${WIREGUARD_GO} (pid ${proc.pid}) exited`)
      }, 1000)
      this.watch.unref()
    }
    this.log.info({ pid: proc?.pid }, `adopted the running ${ifname} device`)
  }

  /** "pid startTime", as spawn wrote it */
  private readPidFile(ifname: string): DeviceProc | undefined {
    try {
      const [pid, startTime] = readFileSync(this.pidFile(ifname), 'utf8').trim().split(' ').map(Number)
      return pid && startTime ? { pid, startTime } : undefined
    } catch {
      return undefined
    }
  }

  private lost(why: string): void {
    this.proc = undefined
    this.adopted = false
    if (this.watch) clearInterval(this.watch)
    this.watch = undefined
    this.child = undefined
    this.restarts++
    this.o.onRestart()
    this.log.warn(`${why}: starting it again`)
  }

  private died(why: string): void {
    const young = Date.now() - this.startedAt < HEALTHY_AFTER_MS
    this.backoffMs = young ? Math.min(Math.max(this.backoffMs * 2, 1000), MAX_BACKOFF_MS) : 0
    this.notBefore = Date.now() + this.backoffMs
    this.lost(why)
    this.o.onExit()
  }

  private async spawn(ifname: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    rmSync(this.socketOf(ifname), { force: true })
    const out = openSync(join(this.dir, `${ifname}.log`), 'a')
    let child: ChildProcess
    try {
      child = spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          BIND_AND_EXEC,
          'plexus-wg-start',
          this.dir,
          this.o.binary ?? WIREGUARD_GO,
          ifname,
        ],
        { detached: true, stdio: ['ignore', out, out], env: { ...process.env, LOG_LEVEL: 'error' } },
      )
    } finally {
      closeSync(out)
    }
    const pid = child.pid
    // unshare and sh exec in place: the pid (and its start time) is wireguard-go's from here on
    const startTime = pid === undefined ? undefined : procStartTime(pid)
    if (pid === undefined || startTime === undefined)
      throw new PlexusError('PLX_WG_DEVICE_DOWN', `could not start ${WIREGUARD_GO}`)
    child.unref()
    this.child = child
    this.proc = { pid, startTime }
    this.startedAt = Date.now()
    child.once('exit', (code, signal) => {
      if (this.child === child)
        this.died(`${WIREGUARD_GO} for ${ifname} exited (${signal ?? `code ${code}`})`)
    })
    await writeFile(this.pidFile(ifname), `${pid} ${startTime}\n`)
    const deadline = Date.now() + 5000
    while (!(await this.answers(this.socketOf(ifname)))) {
      if (this.child !== child || Date.now() > deadline)
        throw new PlexusError(
          'PLX_WG_DEVICE_DOWN',
          `${WIREGUARD_GO} for ${ifname} did not come up (see ${join(this.dir, `${ifname}.log`)})`,
        )
      await new Promise((r) => setTimeout(r, 20))
    }
    this.log.info({ pid }, `started ${WIREGUARD_GO} for ${ifname}`)
  }

  /** Converges the device to `want` (key, port, peers) over UAPI; returns what it changed. */
  async configure(want: DesiredWireguard): Promise<DevicePlan> {
    const socket = this.socketOf(want.ifname)
    const { privateKey } = await this.o.keys.load()
    const have = await getDevice(socket)
    const plan = planDevice({ privateKey, listenPort: want.listenPort, peers: want.peers }, have)
    this.last = have
    if (plan.request) {
      await uapiCall(socket, plan.request)
      this.last = await getDevice(socket)
    }
    return plan
  }

  status(): WireguardStatus | undefined {
    if (!this.ifname) return undefined
    return {
      implementation: 'wireguard-go',
      ifname: this.ifname,
      socket: this.socketOf(this.ifname),
      ...(this.proc ? { pid: this.proc.pid } : {}),
      adopted: this.adopted,
      restarts: this.restarts,
      ...keyStatus(this.o.keys),
      ...(this.last ? { listenPort: this.last.listenPort } : {}),
      peers: this.last?.peers ?? [],
    }
  }

  /** Stops watching; the device keeps running (an agent restart adopts it). */
  close(): void {
    if (this.watch) clearInterval(this.watch)
    this.watch = undefined
    this.child?.removeAllListeners('exit')
    this.child = undefined
  }

  /** Stops the device (the backend is no longer wireguard). */
  async stop(): Promise<void> {
    const proc = this.proc
    const ifname = this.ifname
    this.close()
    this.proc = undefined
    this.adopted = false
    this.ifname = undefined
    if (proc) signalOwn(proc.pid, proc.startTime, 'SIGTERM')
    if (ifname) rmSync(this.pidFile(ifname), { force: true })
    if (proc) this.log.info({ pid: proc.pid }, `stopped ${WIREGUARD_GO}`)
  }
}

/**
 * `plexusd --cleanup`, which reads no config: the wireguard-go processes of
 * `ifname` in this network namespace, wherever their socket is. Returns their pids.
 */
export function devicePids(ifname: string): number[] {
  const ownNs = readlinkSync('/proc/self/ns/net')
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      const isDevice = argv[0]?.endsWith(WIREGUARD_GO) && argv.at(-2) === ifname
      if (isDevice && readlinkSync(`/proc/${entry}/ns/net`) === ownNs) out.push(Number(entry))
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out
}

/** SIGTERM to each, then waits (up to 2 s) until they are gone, so their devices are too */
export async function stopDevices(ifname: string): Promise<{ stopped: number[]; errors: string[] }> {
  const stopped: DeviceProc[] = []
  const errors: string[] = []
  for (const pid of devicePids(ifname)) {
    const startTime = procStartTime(pid)
    if (startTime === undefined) continue
    try {
      process.kill(pid, 'SIGTERM')
      stopped.push({ pid, startTime })
    } catch (err) {
      errors.push(`${WIREGUARD_GO} pid ${pid}: ${errorMessage(err)}`)
    }
  }
  const deadline = Date.now() + 2000
  while (stopped.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  return { stopped: stopped.map((p) => p.pid), errors }
}
