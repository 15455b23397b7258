// The views that are tables: hosts (the map's facts, for keyboard and screen-reader users),
// a host's details, services, containers, jobs with their allocations.
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { zoneOf } from '../model/rtt.js'
import {
  type AllocLine,
  api,
  type Endpoint,
  type Host,
  type JobLine,
  type JobRebalanceReply,
  type Link,
  type ServiceMember,
  type ServiceSummary,
} from './api.js'

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')

/** a data cell whose state is styled (state-…, alloc-…: the stylesheet colours them) */
interface Styled {
  styled: ComponentChildren
  class: string
}
const styled = (value: ComponentChildren, cls: string): Styled => ({ styled: value, class: cls })
const isStyled = (c: unknown): c is Styled => typeof c === 'object' && c !== null && 'styled' in c

/** One table as every view draws it: a caption, column headers, each row headed by its first cell. */
function DataTable<T>(p: {
  caption: ComponentChildren
  columns: string[]
  rows: T[]
  rowKey: (row: T) => string
  cells: (row: T) => [ComponentChildren, ...(ComponentChildren | Styled)[]]
}) {
  return (
    <table>
      <caption>{p.caption}</caption>
      <thead>
        <tr>
          {p.columns.map((c) => (
            <th scope="col" key={c}>
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {p.rows.map((row) => {
          const [head, ...rest] = p.cells(row)
          return (
            <tr key={p.rowKey(row)}>
              <th scope="row">{head}</th>
              {rest.map((c, i) =>
                isStyled(c) ? (
                  <td key={i} class={c.class}>
                    {c.styled}
                  </td>
                ) : (
                  <td key={i}>{c}</td>
                ),
              )}
            </tr>
          )
        })}
      </tbody>
    </table>
  )
}

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
    <DataTable
      caption={`${hosts.length} hosts: state, subnet, zone, RTT from this host, labels`}
      columns={['host', 'state', 'address', 'subnet', 'zone', 'RTT', 'labels']}
      rows={hosts}
      rowKey={(h) => h.name}
      cells={(h) => [
        <button type="button" class="link" onClick={() => onSelect(h.name)}>
          {h.name}
        </button>,
        styled(h.state + (h.drained ? ' (drained)' : ''), `state-${h.state}`),
        h.address,
        subnetOf.get(h.name) ?? 'none',
        zoneOf(h.labels) ?? '',
        rtt(h),
        labelText(h.labels),
      ]}
    />
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
    <DataTable
      caption={`endpoints of ${name}`}
      columns={['container', 'host', 'address', 'ports', 'health']}
      rows={members}
      rowKey={(m) => m.endpointKey}
      cells={(m) => [
        m.name,
        m.host,
        m.ipv4,
        portText(m.ports),
        `${m.healthy ? 'healthy' : 'unhealthy'}${m.checkStates.length ? `: ${m.checkStates.map((c) => `${c.check} ${c.status}`).join(', ')}` : ''}`,
      ]}
    />
  )
}

export function ServicesView({ services, version }: { services: ServiceSummary[]; version: number }) {
  const [open, setOpen] = useState<string | undefined>()
  return (
    <>
      <DataTable
        caption={`${services.length} services: healthy / total per host`}
        columns={['service', 'healthy / total', 'per host', 'ports', 'tags']}
        rows={services}
        rowKey={(s) => s.name}
        cells={(s) => [
          <button
            type="button"
            class="link"
            aria-expanded={open === s.name}
            onClick={() => setOpen(open === s.name ? undefined : s.name)}
          >
            {s.name}
          </button>,
          `${s.healthy} / ${s.total}`,
          s.hosts.map((h) => `${h.host} ${h.healthy}/${h.total}`).join(', '),
          portText(s.ports),
          s.tags.join(', '),
        ]}
      />
      {open && <ServiceEndpoints name={open} version={version} />}
    </>
  )
}

/** a container's links as `alias → target (address)`; links live on the container's own host, so only this agent's show */
function linkText(links: Link[], e: Endpoint): string {
  if (!e.local) return ''
  return links
    .filter((l) => l.container === e.name)
    .map((l) => `${l.alias} → ${l.target}${l.resolved ? ` (${l.resolved.ipv4})` : ' (not found)'}`)
    .join(', ')
}

export function ContainersView({ endpoints, links }: { endpoints: Endpoint[]; links: Link[] }) {
  return (
    <DataTable
      caption={`${endpoints.length} container endpoints (links: this host's containers)`}
      columns={['container', 'host', 'address', 'interface', 'service', 'ports', 'published', 'links']}
      rows={endpoints}
      rowKey={(e) => e.key}
      cells={(e) => [
        e.name,
        e.host,
        e.ipv4 + (e.withdrawn ? ` (withdrawn: ${e.withdrawn})` : ''),
        e.ifname,
        e.service ?? '',
        portText(e.ports),
        (e.published ?? [])
          .map((p) => `${p.hostIp ?? '*'}:${p.hostPort} → ${p.containerPort}/${p.protocol ?? 'tcp'}`)
          .join(', '),
        linkText(links, e),
      ]}
    />
  )
}

type Verdict = JobRebalanceReply['explanation']['groups'][number]['hosts'][number]

/** one host's verdict for a group, as `plexctl job explain` words it: the filter and why, or the scores */
function verdictText(v: Verdict): string {
  if (v.filter) return `filtered by ${v.filter}${v.reason ? `: ${v.reason}` : ''}`
  const s = v.scores
  if (!s) return v.reason ?? ''
  const parts = [
    s.network === undefined ? '' : `network ${s.network.toFixed(2)}`,
    s.networkCostMs === undefined ? '' : `(${s.networkCostMs.toFixed(1)} ms to partners)`,
    `balance ${s.balance.toFixed(2)}`,
    s.affinity === undefined ? '' : `affinity ${s.affinity.toFixed(2)}`,
    s.spread === undefined ? '' : `spread ${s.spread.toFixed(2)}`,
  ]
  return `score ${s.total.toFixed(2)}: ${parts.filter(Boolean).join(', ')}`
}

/** GET /v1/jobs/<name>/explain: where the job runs, each group's verdict of every host, its network cost */
function JobExplanation({ name, version }: { name: string; version: number }) {
  const [res, setRes] = useState<JobRebalanceReply | string>('loading')
  useEffect(() => {
    api.jobExplain(name).then(setRes, (e: Error) => setRes(e.message))
  }, [name, version])
  if (typeof res === 'string') return <p>{res}</p>
  return (
    <section class="details" aria-label={`placement of ${name}`}>
      <h2>placement of {name}</h2>
      <p>
        network cost now {res.costNow.toFixed(1)}, placed afresh {res.costAfter.toFixed(1)}
        {res.moves.length
          ? `: a rebalance would move ${res.moves.map((m) => `${m.group}/${m.slot} ${m.from} → ${m.to}`).join(', ')}`
          : ': no move would lower it by 5 % or more'}
      </p>
      {res.explanation.groups.map((g) => (
        <DataTable
          key={g.group}
          caption={`group ${g.group}: ${g.placed} of ${g.wanted} placed; every host's verdict`}
          columns={['host', 'verdict']}
          rows={g.hosts}
          rowKey={(v) => v.host}
          cells={(v) => [v.name, styled(verdictText(v), v.filter ? 'verdict-filtered' : 'verdict-scored')]}
        />
      ))}
    </section>
  )
}

export function JobsView({
  jobs,
  allocs,
  version,
}: {
  jobs: JobLine[]
  allocs: AllocLine[]
  version: number
}) {
  const [open, setOpen] = useState<string | undefined>()
  return (
    <>
      <DataTable
        caption={`${jobs.length} jobs (a job's name opens its placement: every host's verdict)`}
        columns={['job', 'type', 'version', 'owner', 'wanted / placed / admitted']}
        rows={jobs}
        rowKey={(j) => j.name}
        cells={(j) => [
          <button
            type="button"
            class="link"
            aria-expanded={open === j.name}
            onClick={() => setOpen(open === j.name ? undefined : j.name)}
          >
            {j.name + (j.stopped ? ' (stopped)' : '')}
          </button>,
          j.type,
          j.version,
          j.owner ?? 'none',
          `${j.wanted} / ${j.placed} / ${j.admitted}`,
        ]}
      />
      <DataTable
        caption={`${allocs.length} allocations, by job and group`}
        columns={['allocation', 'job / group / slot', 'host', 'state', 'address', 'restarts', 'reason']}
        rows={allocs}
        rowKey={(a) => a.id}
        cells={(a) => [
          a.id,
          `${a.job} / ${a.group} / ${a.slot} (v${a.jobVersion})`,
          a.hostName,
          styled(a.status, `alloc-${a.status}`),
          a.address ?? '',
          a.restarts,
          a.reason ?? '',
        ]}
      />
      {open && <JobExplanation name={open} version={version} />}
    </>
  )
}
