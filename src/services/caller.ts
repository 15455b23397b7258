// Who is calling the application API: a request from a container's address is
// that container's endpoint (anti-spoofing in the datapath drops packets whose
// source is not the sending veth's container, so the address cannot be borrowed).
import { endpointCodec } from '../store/codecs.js'
import { ENDPOINT_PREFIX, type StoreRecord } from '../store/types.js'
import type { Endpoint } from './catalog.js'

/** A socket's remote address as the endpoint table writes it (IPv4-mapped IPv6 unwrapped). */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/**
 * The endpoint of this host (`self`) whose address is `address`, from the
 * records under `endpoints/<self>/`; undefined when none is: another host's
 * container, the host itself, anything else. Pure.
 */
export function callerEndpoint(records: StoreRecord[], self: string, address: string): Endpoint | undefined {
  const ip = plainAddress(address)
  const prefix = `${ENDPOINT_PREFIX}${self}/`
  for (const r of records) {
    const v = r.key.startsWith(prefix) ? endpointCodec.valueOf(r) : undefined
    if (v && (v.ipv4 === ip || v.ipv6 === ip)) return { key: r.key, peer: self, value: v }
  }
  return undefined
}
