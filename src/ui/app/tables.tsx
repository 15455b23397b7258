// The views that are tables: hosts (the map's facts, for keyboard and screen-reader users),
// a host's details, services, containers, jobs with their allocations.
import { useEffect, useState } from 'preact/hooks'
import { zoneOf } from '../model/rtt.js'
import {
  type AllocLine,
  api,
  type Endpoint,
  type Host,
  type JobLine,
  type ServiceMember,
  type ServiceSummary,
} from './api.js'

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
const rtt = (h: Host) => (h.self ? 'this host' : h.rttMs === null ? 'unknown' : `${h.rttMs} ms`)

export function HostsTable({
  hosts,
  subnetOf,
  onSelect,
}: {
  hosts: Host[]
  subnetOf: Map<string, string>
  onSelect: (n: string) => void
}) {
  return (
    <table>
      <caption>{hosts.length} hosts: state, subnet, zone, RTT from this host, labels</caption>
      <thead>
        <tr>
          <th scope="col">host</th>
          <th scope="col">state</th>
          <th scope="col">address</th>
          <th scope="col">subnet</th>
          <th scope="col">zone</th>
          <th scope="col">RTT</th>
          <th scope="col">labels</th>
        </tr>
      </thead>
      <tbody>
        {hosts.map((h) => (
          <tr key={h.name}>
            <th scope="row">
              <button type="button" class="link" onClick={() => onSelect(h.name)}>
                {h.name}
              </button>
            </th>
            <td class={`state-${h.state}`}>{h.state + (h.drained ? ' (drained)' : '')}</td>
            <td>{h.address}</td>
            <td>{subnetOf.get(h.name) ?? 'none'}</td>
            <td>{zoneOf(h.labels) ?? ''}</td>
            <td>{rtt(h)}</td>
            <td>{labelText(h.labels)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function HostDetails({
  host,
  subnet,
  onClose,
}: {
  host: Host
  subnet: string | undefined
  onClose: () => void
}) {
  const rows: [string, string][] = [
    ['state', host.state + (host.drained ? ' (drained)' : '')],
    ['address', host.address],
    ['subnet', subnet ?? 'none'],
    ['zone', zoneOf(host.labels) ?? 'none'],
    ['RTT from this host', rtt(host)],
    ['last heard', host.lastHeard],
    ['version', host.version ?? ''],
    ['peer', host.peerId],
    ['labels', labelText(host.labels) || 'none'],
  ]
  return (
    <section class="details" aria-label={`host ${host.name}`}>
      <h2>{host.name}</h2>
      <dl>
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <button type="button" onClick={onClose}>
        close
      </button>
    </section>
  )
}

const portText = (ports: { name?: string; port?: number; protocol?: string }[] | undefined) =>
  (ports ?? []).map((p) => `${p.name ? `${p.name}:` : ''}${p.port ?? '?'}/${p.protocol ?? 'tcp'}`).join(', ')

function ServiceEndpoints({ name, version }: { name: string; version: number }) {
  const [members, setMembers] = useState<ServiceMember[] | string>('loading')
  useEffect(() => {
    api.service(name).then(
      (d) => setMembers(d.endpoints),
      (e: Error) => setMembers(e.message),
    )
  }, [name, version])
  if (typeof members === 'string') return <p>{members}</p>
  return (
    <table>
      <caption>endpoints of {name}</caption>
      <thead>
        <tr>
          <th scope="col">container</th>
          <th scope="col">host</th>
          <th scope="col">address</th>
          <th scope="col">ports</th>
          <th scope="col">health</th>
        </tr>
      </thead>
      <tbody>
        {members.map((m) => (
          <tr key={m.endpointKey}>
            <td>{m.name}</td>
            <td>{m.host}</td>
            <td>{m.ipv4}</td>
            <td>{portText(m.ports)}</td>
            <td>{m.healthy ? 'healthy' : `unhealthy${m.checks.length ? `: ${m.checks.join(', ')}` : ''}`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function ServicesView({ services, version }: { services: ServiceSummary[]; version: number }) {
  const [open, setOpen] = useState<string | undefined>()
  return (
    <>
      <table>
        <caption>{services.length} services: healthy / total per host</caption>
        <thead>
          <tr>
            <th scope="col">service</th>
            <th scope="col">healthy / total</th>
            <th scope="col">per host</th>
            <th scope="col">ports</th>
            <th scope="col">tags</th>
          </tr>
        </thead>
        <tbody>
          {services.map((s) => (
            <tr key={s.name}>
              <th scope="row">
                <button
                  type="button"
                  class="link"
                  aria-expanded={open === s.name}
                  onClick={() => setOpen(open === s.name ? undefined : s.name)}
                >
                  {s.name}
                </button>
              </th>
              <td>
                {s.healthy} / {s.total}
              </td>
              <td>{s.hosts.map((h) => `${h.host} ${h.healthy}/${h.total}`).join(', ')}</td>
              <td>{portText(s.ports)}</td>
              <td>{s.tags.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && <ServiceEndpoints name={open} version={version} />}
    </>
  )
}

export function ContainersView({ endpoints }: { endpoints: Endpoint[] }) {
  return (
    <table>
      <caption>{endpoints.length} container endpoints</caption>
      <thead>
        <tr>
          <th scope="col">container</th>
          <th scope="col">host</th>
          <th scope="col">address</th>
          <th scope="col">interface</th>
          <th scope="col">service</th>
          <th scope="col">ports</th>
          <th scope="col">published</th>
        </tr>
      </thead>
      <tbody>
        {endpoints.map((e) => (
          <tr key={e.key}>
            <th scope="row">{e.name}</th>
            <td>{e.host}</td>
            <td>{e.ipv4 + (e.withdrawn ? ` (withdrawn: ${e.withdrawn})` : '')}</td>
            <td>{e.ifname}</td>
            <td>{e.service ?? ''}</td>
            <td>{portText(e.ports)}</td>
            <td>
              {(e.published ?? [])
                .map((p) => `${p.hostIp ?? '*'}:${p.hostPort} → ${p.containerPort}/${p.protocol ?? 'tcp'}`)
                .join(', ')}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function JobsView({ jobs, allocs }: { jobs: JobLine[]; allocs: AllocLine[] }) {
  return (
    <>
      <table>
        <caption>{jobs.length} jobs</caption>
        <thead>
          <tr>
            <th scope="col">job</th>
            <th scope="col">type</th>
            <th scope="col">version</th>
            <th scope="col">owner</th>
            <th scope="col">wanted / placed / admitted</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.name}>
              <th scope="row">{j.name + (j.stopped ? ' (stopped)' : '')}</th>
              <td>{j.type}</td>
              <td>{j.version}</td>
              <td>{j.owner ?? 'none'}</td>
              <td>
                {j.wanted} / {j.placed} / {j.admitted}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>{allocs.length} allocations, by job and group</caption>
        <thead>
          <tr>
            <th scope="col">allocation</th>
            <th scope="col">job / group / slot</th>
            <th scope="col">host</th>
            <th scope="col">state</th>
            <th scope="col">address</th>
            <th scope="col">restarts</th>
            <th scope="col">reason</th>
          </tr>
        </thead>
        <tbody>
          {allocs.map((a) => (
            <tr key={a.id}>
              <th scope="row">{a.id}</th>
              <td>{`${a.job} / ${a.group} / ${a.slot} (v${a.jobVersion})`}</td>
              <td>{a.hostName}</td>
              <td class={`alloc-${a.status}`}>{a.status}</td>
              <td>{a.address ?? ''}</td>
              <td>{a.restarts}</td>
              <td>{a.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}
