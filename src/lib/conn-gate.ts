import type { Socket } from 'node:net'

/** How many stream connections a listener takes, and for how long a message may take. */
export interface GateLimits {
  /** connections open at once; more are closed on arrival */
  maxConnections: number
  /** connections one client may hold; more are closed on arrival */
  maxPerClient: number
  /**
   * time for each whole message, from the connect or the previous answer: a
   * connection that has not delivered one by then is closed, however many
   * bytes it dripped in between
   */
  messageMs: number
}

/** what a gate saw, for its owner's counters */
export type GateEvent = 'accepted' | 'refused' | 'timedOut'

/** One admitted connection's deadline, driven by its protocol's framing. */
export interface MessageDeadline {
  /** a whole message arrived: the wait for its answer is ours, not the client's */
  received(): void
  /** a message was answered: the client has a new deadline for its next one */
  answered(): void
}

/**
 * Admission and deadlines for stream listeners (DNS over TCP, the API), so one
 * client cannot hold every slot of a host: a total and a per-client bound, and
 * a deadline per message. An idle timer (socket.setTimeout) is reset by every
 * byte, so a client dripping one byte every few seconds would hold its slot for
 * ever; this deadline moves only when a whole message has arrived or been
 * answered, and it is held while an answer is owed (a forwarded DNS query, a
 * blocking KV read).
 */
export class ConnectionGate {
  private readonly open = new Set<Socket>()
  private readonly perClient = new Map<string, number>()

  constructor(
    private readonly limits: GateLimits,
    private readonly count: (e: GateEvent) => void = () => {},
  ) {}

  /**
   * Takes s for `client` (its source address, or whatever identifies the
   * caller) or closes it at once; returns its deadline when taken.
   */
  admit(s: Socket, client: string): MessageDeadline | undefined {
    const held = this.perClient.get(client) ?? 0
    if (held >= this.limits.maxPerClient || this.open.size >= this.limits.maxConnections) {
      this.count('refused')
      s.destroy()
      return undefined
    }
    this.perClient.set(client, held + 1)
    this.open.add(s)
    this.count('accepted')
    let timer: NodeJS.Timeout | undefined
    let pending = 0
    let closed = false
    const arm = (): void => {
      clearTimeout(timer)
      // a response that ends because its client went away is told after the close: no deadline for a gone socket
      if (closed) return
      timer = setTimeout(() => {
        if (pending > 0) return arm()
        this.count('timedOut')
        s.destroy()
      }, this.limits.messageMs)
    }
    arm()
    s.once('close', () => {
      closed = true
      clearTimeout(timer)
      this.open.delete(s)
      const n = (this.perClient.get(client) ?? 1) - 1
      if (n > 0) this.perClient.set(client, n)
      else this.perClient.delete(client)
    })
    return {
      received: () => {
        pending++
        arm()
      },
      answered: () => {
        pending = Math.max(0, pending - 1)
        arm()
      },
    }
  }

  /** connections open now */
  get size(): number {
    return this.open.size
  }

  /** Closes every connection (the listener is going away). */
  destroyAll(): void {
    for (const s of this.open) s.destroy()
  }
}
