import { type ChildProcess, fork } from 'node:child_process'
import type { Socket as UdpSocket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../lib/log.js'
import type { Upstream } from './forward/forward.js'
import type { AnswerTable } from './zone/compile.js'

// Node 20 has no SO_REUSEPORT for dgram (reusePort arrived in 22.12/23.1), and
// worker threads cannot share a socket. What Node does allow is passing a bound
// UDP socket to a child process over IPC: parent and children then read the
// same kernel socket and the kernel hands each datagram to one reader. Each
// worker gets the compiled zone (structured clone) on every change and runs
// the same chain; TCP stays in the agent process.

export interface WorkerOptions {
  upstreams: Upstream[]
  timeoutMs: number
  maxInFlight: number
  cacheSize: number
  cacheMaxTtl: number
}

export type ToWorker =
  | { type: 'init'; opts: WorkerOptions; table: AnswerTable }
  | { type: 'zone'; table: AnswerTable }
  | { type: 'udp' }
export type FromWorker =
  | { type: 'stats'; udpQueries: number; malformed: number }
  /** the worker reads this many shared sockets now */
  | { type: 'sockets'; count: number }

export class DnsWorkers {
  private readonly children: ChildProcess[] = []
  private readonly counts = new Map<ChildProcess, { udpQueries: number; malformed: number }>()
  private readonly sockets = new Map<ChildProcess, number>()
  private readonly shared: UdpSocket[] = []
  private stopping = false

  constructor(
    readonly count: number,
    private readonly opts: WorkerOptions,
    private readonly logger: Logger,
  ) {}

  async start(table: AnswerTable): Promise<void> {
    for (let i = 0; i < this.count; i++) this.spawn(table)
  }

  private spawn(table: AnswerTable): void {
    const child = fork(fileURLToPath(new URL('./worker.js', import.meta.url)), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.children.push(child)
    child.on('message', (m: FromWorker) => {
      if (m?.type === 'stats') this.counts.set(child, { udpQueries: m.udpQueries, malformed: m.malformed })
      if (m?.type === 'sockets') this.sockets.set(child, m.count)
    })
    child.on('exit', (code, signal) => {
      const i = this.children.indexOf(child)
      if (i >= 0) this.children.splice(i, 1)
      if (this.stopping) return
      // a worker that dies is replaced; the agent process keeps answering meanwhile
      this.logger.warn({ code, signal }, 'dns worker exited; restarting it')
      setTimeout(() => {
        if (!this.stopping) this.spawn(this.lastTable ?? table)
      }, 500).unref()
    })
    child.send({ type: 'init', opts: this.opts, table } satisfies ToWorker)
    for (const s of this.shared) child.send({ type: 'udp' } satisfies ToWorker, s)
  }

  private lastTable?: AnswerTable

  share(udp: UdpSocket): void {
    this.shared.push(udp)
    for (const c of this.children) c.send({ type: 'udp' } satisfies ToWorker, udp)
  }

  publish(table: AnswerTable): void {
    this.lastTable = table
    for (const c of this.children) if (c.connected) c.send({ type: 'zone', table } satisfies ToWorker)
  }

  /** workers reading every shared socket */
  get ready(): number {
    return this.children.filter((c) => (this.sockets.get(c) ?? 0) >= this.shared.length).length
  }

  stats(): { udpQueries: number; malformed: number } {
    let udpQueries = 0
    let malformed = 0
    for (const v of this.counts.values()) {
      udpQueries += v.udpQueries
      malformed += v.malformed
    }
    return { udpQueries, malformed }
  }

  async stop(): Promise<void> {
    this.stopping = true
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once('exit', () => resolve())
            c.kill('SIGTERM')
          }),
      ),
    )
  }
}
