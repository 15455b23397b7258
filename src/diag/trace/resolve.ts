// The first hop of a trace to a name: the name asked of Plexus DNS as the
// source container's resolver would ask it (search list, ndots), from a
// socket in the container's namespace to its nameserver (its host's bridge
// gateway), so a firewall or a DNS server in the way shows here too.
import dnsPacket from 'dns-packet'
import { ZONE_ORIGIN } from '../../dns/service.js'
import { errorMessage } from '../../lib/errors.js'
import { buildCatalog, catalogInput } from '../../services/catalog.js'
import { type ReadableStore, SERVICE_PREFIX } from '../../store/types.js'
import { exchangeUdp } from '../netns-udp.js'
import type { Hop } from './model.js'
import { searchCandidates, serviceOfName, whyNoAddress } from './names.js'

/** one query's wait: the trace's whole answer is bounded at 2 s */
const DNS_TIMEOUT_MS = 600

export interface Resolved {
  hop: Hop
  /** the A records of the first name that had any, in the server's order */
  addresses: string[]
}

interface Answered {
  name: string
  rcode: string
  addresses: string[]
}

function decode(reply: Buffer): (Answered & { id: number }) | undefined {
  try {
    const p = dnsPacket.decode(reply)
    return {
      id: p.id ?? -1,
      name: p.questions?.[0]?.name ?? '',
      rcode: (p as { rcode?: string }).rcode ?? 'NOERROR',
      addresses: (p.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data as string] : [])),
    }
  } catch {
    return undefined
  }
}

/**
 * Asks every candidate name at once (one round trip) and takes them in the resolver's order: the
 * first with an address wins, as glibc's would after its NXDOMAIN/NODATA answers for the ones
 * before it.
 */
export async function resolveName(
  h: { name: string; store: ReadableStore },
  from: { netns?: string; nameserver: string; endpointKey?: string },
  name: string,
): Promise<Resolved> {
  const candidates = searchCandidates(name)
  const ids = candidates.map((_, i) => (Math.floor(Math.random() * 0xff00) + i) & 0xffff)
  const queries = candidates.map((n, i) =>
    dnsPacket.encode({
      type: 'query',
      id: ids[i] as number,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: n }],
    }),
  )
  const base = {
    host: h.name,
    component: 'dns',
    ...(from.endpointKey ? { record: from.endpointKey } : {}),
  }
  const server = `${from.nameserver}:53`
  const unanswered = (cause: string): Resolved => ({
    addresses: [],
    hop: {
      ...base,
      action: 'dropped',
      object: `query ${name} to ${server}`,
      cause,
      fix: 'plexctl doctor on the source host: is the DNS server listening on the gateway, does a firewall drop port 53?',
    },
  })
  let answers: Answered[]
  let ms: number | undefined
  try {
    const x = await exchangeUdp(from.netns, from.nameserver, 53, queries, DNS_TIMEOUT_MS)
    ms = x.firstReplyMs
    const byId = new Map(
      x.replies.flatMap((r) => {
        const d = decode(r)
        return d ? [[d.id, d] as const] : []
      }),
    )
    answers = ids.flatMap((id) => {
      const a = byId.get(id)
      return a ? [a] : []
    })
  } catch (err) {
    return unanswered(`cannot ask ${server} from the source: ${errorMessage(err)}`)
  }
  if (answers.length === 0) return unanswered(`${server} did not answer within ${DNS_TIMEOUT_MS} ms`)
  const hit = answers.find((a) => a.addresses.length > 0)
  const services = candidates.map((c) => serviceOfName(c, ZONE_ORIGIN))
  if (hit) {
    const svc = serviceOfName(hit.name, ZONE_ORIGIN)
    return {
      addresses: hit.addresses,
      hop: {
        ...base,
        action: 'forwarded',
        object: `A ${hit.name} → ${hit.addresses.join(', ')} (from ${server}${ms === undefined ? '' : `, ${ms.toFixed(1)} ms`})`,
        ...(svc ? { record: `${SERVICE_PREFIX}${svc}` } : {}),
      },
    }
  }
  const tried = answers.map((a) => `${a.name} ${a.rcode === 'NOERROR' ? 'NODATA' : a.rcode}`).join(', ')
  const svc = services.find((s) => s !== undefined)
  // a service that exists but answers nothing: the catalog says why (no member, none healthy)
  const entry = svc === undefined ? undefined : buildCatalog(catalogInput(h.store)).services.get(svc)
  const why =
    svc !== undefined && entry
      ? whyNoAddress(entry, svc)
      : {
          cause: `${name} does not resolve (${tried})`,
          fix: 'check the name: plexctl services, plexctl endpoints',
        }
  return {
    addresses: [],
    hop: {
      ...base,
      action: 'dropped',
      object: `A ${name}: ${tried}`,
      ...(entry && svc ? { record: `${SERVICE_PREFIX}${svc}` } : {}),
      ...why,
    },
  }
}
