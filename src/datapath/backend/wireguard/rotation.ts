// WireGuard key rotation (`plexctl network rotate-keys`, README.md). The
// request goes through the store like everything else: the API writes
// config/wireguard-rotation = {generation, requestedAt}, and every host's
// datapath, watching it, rotates its own key once per generation newer than
// the one it took up last (kept in the state dir: a restart does not rotate
// again). A host rotates in two phases so that traffic pauses for no more than
// the other hosts' reaction to its new key:
//
// 1. it makes the next key pair (stored before it is told: wireguard.key.next)
//    and announces its public key in its lease beside the current one; every
//    other host adds a peer of that key, with no allowed IPs (the current
//    key's peer keeps the routing: an allowed IP belongs to one peer);
// 2. after `settleMs` (the gossip and every host's pass), the next key becomes
//    its key: the device gets the private key (wireguard-go then drops its
//    sessions and handshakes again, with peers that already know the key) and
//    the lease the new key alone; the others move the allowed IPs to the new
//    key's peer and remove the old one.
//
// A crash between the phases leaves the next key in the state dir: the start
// resumes from phase 1 (announce, settle, take it).
import { namedNetworks, requireNetwork } from '../../../ipam/network.js'
import { errorMessage, PlexusError } from '../../../lib/errors.js'
import type { Logger } from '../../../lib/log.js'
import { wireguardRotationCodec } from '../../../store/codecs.js'
import type { WireguardRotationValue } from '../../../store/schemas.js'
import { type ReadableStore, type Store, WIREGUARD_ROTATION_KEY } from '../../../store/types.js'
import type { HostKeys } from './keys.js'

/** what a host does about rotation now: nothing, start one, or finish the one its state dir holds */
export type RotationStep = 'none' | 'begin' | 'resume'

/**
 * Pure. `announced`: a next key is stored (a rotation was under way, maybe
 * before a crash), and is finished whatever the request says now. Otherwise a
 * generation newer than the one taken starts one: "newer", not "other", because
 * an agent that starts from an older snapshot of the store must not rotate for
 * a request it has already served.
 */
export function rotationStep(requested: number, taken: number, announced: boolean): RotationStep {
  if (announced) return 'resume'
  return requested > taken ? 'begin' : 'none'
}

/** the request after `current` (absent, or a record that does not decode: the first) */
export function nextRotation(
  current: WireguardRotationValue | undefined,
  now: number,
): WireguardRotationValue {
  return { generation: (current?.generation ?? 0) + 1, requestedAt: now }
}

/** the request as the store holds it now; a record that does not decode asks for nothing */
function currentRequest(store: ReadableStore): WireguardRotationValue | undefined {
  const rec = store.get(WIREGUARD_ROTATION_KEY)
  return rec ? wireguardRotationCodec.valueOf(rec) : undefined
}

/**
 * POST /v1/network/rotate-keys: asks every host for a new key. Refused
 * (PLX_IPAM_NO_NETWORK, 404; PLX_WG_NOT_IN_USE, 409) unless the cluster network's backend is wireguard
 * or a bridge network's is.
 * The write is a compare-and-set on the record this host has: two requests
 * here never make one generation.
 */
export async function requestKeyRotation(store: Store, now = Date.now()): Promise<WireguardRotationValue> {
  const info = requireNetwork(store)
  const type = info.config?.Backend.Type
  const named = namedNetworks(store).some((n) => n.driver === 'bridge' && n.backend === 'wireguard')
  if (type !== 'wireguard' && !named)
    throw new PlexusError(
      'PLX_WG_NOT_IN_USE',
      `the cluster network's backend is ${type ?? `invalid (${info.problem})`} and no bridge network's is wireguard: only wireguard has keys to rotate`,
      { status: 409 },
    )
  const value = nextRotation(currentRequest(store), now)
  await store.put(WIREGUARD_ROTATION_KEY, wireguardRotationCodec.encode(value), {
    cas: store.modifyIndex(WIREGUARD_ROTATION_KEY),
  })
  return value
}

export interface KeyRotationOptions {
  keys: HostKeys
  store: ReadableStore
  /** phase 1 to phase 2: long enough for the announcement's gossip and every host's pass */
  settleMs: number
  logger: Logger
  /** an overlay of this host uses wireguard, the cluster network or a bridge network (nothing to rotate otherwise) */
  active: () => boolean
  /** puts this host's keys (keys.identity()) in its lease */
  publish: () => Promise<void>
  /** phase 2 took the next key: the device needs it (a pass); counted */
  rotated: () => void
}

/** One host's side of rotation: watches the request (check() on every change) and runs the two phases. */
export class KeyRotation {
  private chain: Promise<void> = Promise.resolve()
  /** phase 2's timer, while phase 1 settles */
  private timer?: NodeJS.Timeout
  private stopped = false
  private readonly log: Logger

  constructor(private readonly o: KeyRotationOptions) {
    this.log = o.logger.child({ component: 'wireguard' })
  }

  /** Starts or resumes a rotation when one is due; cheap when none is (it runs on every lease change). */
  check(): Promise<void> {
    return this.serial(() => this.step())
  }

  /** one step at a time: a check while phase 2 writes the key files waits for it */
  private serial(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      // the files are written before anything is told: the next check (any lease change) tries again
      this.log.error({ err }, `WireGuard key rotation: ${errorMessage(err)}`)
    })
    return this.chain
  }

  private async step(): Promise<void> {
    if (this.stopped || this.timer || !this.o.active()) return
    const { keys } = this.o
    const requested = currentRequest(this.o.store)?.generation ?? 0
    await keys.load()
    // a key this agent has just made is newer than every request so far
    if (keys.generation === undefined) await keys.setGeneration(requested)
    const taken = keys.generation ?? requested
    const step = rotationStep(requested, taken, keys.nextPublicKey !== undefined)
    if (step === 'none') return
    if (step === 'begin') await keys.announceNext()
    // resumed after a crash in phase 2, the generation may already be written: take the newer one
    const target = Math.max(requested, taken)
    this.log.info(
      { generation: target, next: keys.nextPublicKey },
      `WireGuard key rotation ${step === 'begin' ? 'begins' : 'resumes'}: next key announced, taken in ${this.o.settleMs} ms`,
    )
    await this.o.publish()
    this.timer = setTimeout(() => void this.serial(() => this.take(target)), this.o.settleMs)
    this.timer.unref()
  }

  /** phase 2; then a request that came meanwhile starts the next rotation */
  private async take(generation: number): Promise<void> {
    this.timer = undefined
    if (this.stopped) return
    const keys = await this.o.keys.takeNext(generation)
    this.o.rotated()
    await this.o.publish()
    this.log.info({ generation, publicKey: keys.publicKey }, 'WireGuard key rotated: the next key is in use')
    await this.step()
  }

  /** a rotation under way stays in the state dir: the next start resumes it */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }
}
