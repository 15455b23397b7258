// Plain data for the zone tests: store records of two hosts with a service.
import dnsPacket from 'dns-packet'
import { isPending, type Reply } from '../../src/dns/chain.js'
import { parseQuery, type Query } from '../../src/dns/wire.js'
import { type AnswerTable, compileZone } from '../../src/dns/zone/compile.js'
import type { ZoneStage } from '../../src/dns/zone/handler.js'
import { buildZone } from '../../src/dns/zone/records.js'
import { buildCatalog, type CatalogInput } from '../../src/services/catalog.js'
import type { StoreRecord } from '../../src/store/types.js'

export function rec(
  key: string,
  value: unknown,
  owner = key.split('/')[1] ?? 'x',
  ttlMs?: number,
): StoreRecord {
  const r: StoreRecord = {
    key,
    value: value as StoreRecord['value'],
    owner,
    version: { wall: Date.now(), logical: 0 },
    tombstone: false,
    sig: '',
  }
  if (ttlMs !== undefined) r.ttlMs = ttlMs
  return r
}

export function endpoint(peer: string, cid: string, extra: Record<string, unknown>): StoreRecord {
  return rec(`endpoints/${peer}/${cid}/eth0`, {
    containerId: cid,
    ifname: 'eth0',
    name: cid,
    host: peer.replace('peer', 'h'),
    ipv4: '10.244.0.2',
    mac: '02:00:00:00:00:01',
    netns: `/run/netns/${cid}`,
    hostVeth: `veth${cid}`,
    labels: {},
    createdAt: new Date().toISOString(),
    ...extra,
  })
}

export function sampleInput(): CatalogInput {
  return {
    nodes: [
      rec('nodes/peer1', { name: 'h1', address: '192.0.2.11' }),
      rec('nodes/peer2', { name: 'h2', address: '192.0.2.12' }),
    ],
    endpoints: [
      endpoint('peer1', 'web1', { ipv4: '10.244.1.2', ipv6: 'fd00::1:2', service: 'web', tags: ['v1'] }),
      endpoint('peer2', 'web2', { ipv4: '10.244.2.2', service: 'web', tags: ['v2'] }),
      endpoint('peer2', 'db1', { ipv4: '10.244.2.3', name: 'DB_One' }),
    ],
    services: [
      rec('services/web', { name: 'web', tags: [], ports: [{ name: 'http', port: 80, protocol: 'tcp' }] }),
      rec('services/empty', { name: 'empty', tags: [], ports: [] }),
    ],
    registrations: [],
    health: [],
  }
}

export function table(input: CatalogInput = sampleInput(), ttl = 5): AnswerTable {
  return compileZone(
    buildZone(buildCatalog(input), {
      origin: 'plexus.internal',
      ttl,
      serial: 7,
      nsAddresses: ['10.244.1.1'],
    }),
  )
}

export function query(
  name: string,
  type: string,
  opts: { edns?: number; id?: number; tcp?: boolean } = {},
): Query {
  const buf = dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    additionals: opts.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns } as dnsPacket.Answer] : [],
  })
  const r = parseQuery(buf, opts.tcp ?? false)
  if (!r.ok) throw new Error(`test query did not parse: rcode ${r.rcode}`)
  return r.query
}

const NEXT = Buffer.from('next')
const passOn = (): Reply => NEXT

/** asks the zone stage; undefined when it passes the query on (not its zone) */
export function ask(
  stage: ZoneStage,
  name: string,
  type: string,
  opts: { edns?: number; tcp?: boolean } = {},
) {
  const r = stage.handle(query(name, type, opts), passOn)
  if (isPending(r)) throw new Error('zone answers synchronously')
  if (r === NEXT) return undefined
  return { raw: r, msg: dnsPacket.decode(r) as unknown as dnsPacket.Packet & { rcode: string } }
}

export const data = (a: dnsPacket.Answer[] | undefined) =>
  (a ?? []).map((x) => ('data' in x ? x.data : undefined))
