// Writes for the services API: definitions and API registrations of this host's endpoints.

import { PlexusError } from '../lib/errors.js'
import { normalizeChecks } from '../store/checks.js'
import { registrationCodec, serviceCodec } from '../store/codecs.js'
import type { CheckSpec, PortSpec, RegistrationValue, ServiceValue } from '../store/records.js'
import type { Store, StoreRecord } from '../store/types.js'
import { buildCatalog, type Catalog, catalogInput, type Endpoint } from './catalog.js'
import { assertLabel, registrationKey, serviceKey } from './model.js'

export interface RegistryComponents {
  store: Store
  peerId: string
}

export interface ServiceBody {
  tags?: string[]
  ports?: PortSpec[]
  checks?: Partial<CheckSpec>[]
}

export interface RegistrationBody extends ServiceBody {
  service: string
  ifname?: string
  ttlSeconds?: number
}

export interface Registered {
  key: string
  endpointKey: string
  /** when a TTL registration lapses unless renewed */
  expiresAt?: string
}

function registered(rec: StoreRecord, ep: Endpoint): Registered {
  const out: Registered = { key: rec.key, endpointKey: ep.key }
  if (rec.ttlMs !== undefined) out.expiresAt = new Date(rec.version.wall + rec.ttlMs).toISOString()
  return out
}

export class ServiceRegistry {
  constructor(private readonly c: RegistryComponents) {}

  catalog(): Catalog {
    return buildCatalog(catalogInput(this.c.store))
  }

  async define(name: string, body: ServiceBody): Promise<ServiceValue> {
    assertLabel('service name', name)
    const ports = body.ports ?? []
    const def: ServiceValue = { name, tags: body.tags ?? [], ports }
    const checks = normalizeChecks(body.checks, ports)
    if (checks.length) def.checks = checks
    await this.c.store.put(serviceKey(name), serviceCodec.encode(def))
    return def
  }

  async undefine(name: string): Promise<void> {
    assertLabel('service name', name)
    if (!(await this.c.store.delete(serviceKey(name))))
      throw new PlexusError('PLX_SERVICE_NOT_FOUND', `no service "${name}" is defined`, { status: 404 })
  }

  /**
   * The endpoint an API id names: a container id (or unique prefix of ≥ 6), or a
   * container name. It must live on this host: only its host may write its records.
   */
  findEndpoint(id: string, ifname?: string): Endpoint {
    const all = this.catalog().endpoints.filter((e) => !ifname || e.value.ifname === ifname)
    const match = (e: Endpoint): boolean =>
      e.value.containerId === id ||
      e.value.name === id ||
      (id.length >= 6 && e.value.containerId.startsWith(id))
    const found = all.filter(match)
    const local = found.filter((e) => e.peer === this.c.peerId)
    if (local.length === 0) {
      if (found.length)
        throw new PlexusError(
          'PLX_SERVICE_NOT_LOCAL',
          `endpoint "${id}" lives on host ${found[0]!.value.host}: register it through that host's agent`,
          { status: 409 },
        )
      throw new PlexusError('PLX_ENDPOINT_NOT_FOUND', `no endpoint "${id}" on this host`, { status: 404 })
    }
    // several interfaces of one container: prefer eth0, else the caller must name one
    const pick = local.length === 1 ? local[0] : local.find((e) => e.value.ifname === 'eth0')
    if (!pick || new Set(local.map((e) => e.value.containerId)).size > 1)
      throw new PlexusError(
        'PLX_ENDPOINT_AMBIGUOUS',
        `"${id}" names several endpoints; use the full container id and ifname`,
      )
    return pick
  }

  async register(id: string, body: RegistrationBody): Promise<Registered> {
    return this.registerEndpoint(this.findEndpoint(id, body.ifname), body)
  }

  /** Registers endpoint `ep` (of this host) in `body.service`: the application API's self-registration. */
  async registerEndpoint(ep: Endpoint, body: RegistrationBody): Promise<Registered> {
    assertLabel('service name', body.service)
    const ports = body.ports ?? []
    const def = this.catalog().services.get(body.service)?.definition
    const v: RegistrationValue = { service: body.service, endpointKey: ep.key, tags: body.tags ?? [], ports }
    const checks = normalizeChecks(body.checks, ports.length ? ports : (def?.ports ?? []))
    if (checks.length) v.checks = checks
    const key = registrationKey(this.c.peerId, ep.value.containerId, ep.value.ifname, body.service)
    const opts = body.ttlSeconds ? { ttlMs: body.ttlSeconds * 1000 } : {}
    return registered(await this.c.store.put(key, registrationCodec.encode(v), opts), ep)
  }

  /**
   * The `pass` of a TTL registration: writes it again unchanged, so it lives
   * one more TTL from now. A registration that already lapsed is gone (404):
   * the caller registers again.
   */
  async renew(ep: Endpoint, service: string): Promise<Registered> {
    assertLabel('service name', service)
    const key = registrationKey(this.c.peerId, ep.value.containerId, ep.value.ifname, service)
    const r = this.c.store.get(key)
    if (!r)
      throw new PlexusError(
        'PLX_SERVICE_NOT_REGISTERED',
        `this endpoint has no registration in "${service}"`,
        {
          status: 404,
        },
      )
    return registered(
      await this.c.store.put(key, r.value, r.ttlMs !== undefined ? { ttlMs: r.ttlMs } : {}),
      ep,
    )
  }

  async deregister(id: string, service: string, ifname?: string): Promise<void> {
    assertLabel('service name', service)
    const ep = this.findEndpoint(id, ifname)
    const key = registrationKey(this.c.peerId, ep.value.containerId, ep.value.ifname, service)
    if (!(await this.c.store.delete(key)))
      throw new PlexusError(
        'PLX_SERVICE_NOT_REGISTERED',
        `endpoint "${id}" has no API registration in "${service}"`,
        {
          status: 404,
        },
      )
  }
}
