// The web UI's root: reads every view's data once, then re-reads what each store change touches
// (model/live.ts) as the watch stream reports it. No polling loop, no reload.
import { render } from 'preact'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { RESOURCES, type Resource, touched } from '../model/live.js'
import {
  type AllocLine,
  api,
  type Endpoint,
  type Host,
  type JobLine,
  type Link,
  type ServiceSummary,
  type StatusReply,
  type SubnetsReply,
  storeIndex,
  watchStore,
} from './api.js'
import { KvView } from './kv.js'
import { ClusterMap } from './map.js'
import { ContainersView, HostDetails, HostsTable, JobsView, ServicesView } from './tables.js'
import { TraceView } from './trace.js'

interface Data {
  hosts: Host[]
  subnets?: SubnetsReply
  endpoints: Endpoint[]
  links: Link[]
  services: ServiceSummary[]
  jobs: JobLine[]
  allocs: AllocLine[]
  kv: string[]
}

const EMPTY: Data = { hosts: [], endpoints: [], links: [], services: [], jobs: [], allocs: [], kv: [] }

/** re-reads are batched: a burst of changes (a job of 50 allocations) costs one read per resource */
const BATCH_MS = 100

const VIEWS = [
  ['map', 'Map'],
  ['hosts', 'Hosts (table)'],
  ['services', 'Services'],
  ['containers', 'Containers'],
  ['jobs', 'Jobs'],
  ['kv', 'KV'],
  ['trace', 'Trace'],
] as const
type ViewName = (typeof VIEWS)[number][0]

const viewOf = (hash: string): ViewName => (VIEWS.find(([v]) => `#${v}` === hash)?.[0] ?? 'map') as ViewName

/** one GET per resource; a route this agent does not run (no scheduler: /v1/jobs) reads as empty */
async function read(r: Resource): Promise<Partial<Data>> {
  const orEmpty = <T,>(p: Promise<T>, empty: T) =>
    p.catch((err: { status?: number }) => {
      if (err.status === 404) return empty
      throw err
    })
  switch (r) {
    case 'hosts':
      return { hosts: await api.hosts() }
    case 'subnets':
      return { subnets: await api.subnets() }
    case 'endpoints':
      return { endpoints: await api.endpoints() }
    case 'links':
      return { links: await api.links() }
    case 'services':
      return { services: await api.services() }
    case 'jobs':
      return { jobs: await orEmpty(api.jobs(), []) }
    case 'allocs':
      return { allocs: await orEmpty(api.allocs(), []) }
    case 'kv':
      return { kv: await api.kvKeys() }
  }
}

function App() {
  const [self, setSelf] = useState<StatusReply | undefined>()
  const [data, setData] = useState<Data>(EMPTY)
  const [version, setVersion] = useState(0)
  const [live, setLive] = useState<'connecting' | 'live' | 'lost'>('connecting')
  const [error, setError] = useState('')
  const [view, setView] = useState<ViewName>(viewOf(location.hash))
  const [selected, setSelected] = useState<string | undefined>()
  const pending = useRef<Set<Resource>>(new Set())
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  const refresh = async (which: Iterable<Resource>) => {
    try {
      const parts = await Promise.all([...which].map(read))
      setData((d) => Object.assign({}, d, ...parts))
      setVersion((v) => v + 1)
      setError('')
    } catch (err) {
      setError((err as Error).message)
    }
  }

  const changed = (key: string | undefined) => {
    for (const r of touched(key)) pending.current.add(r)
    if (timer.current) return
    timer.current = setTimeout(() => {
      timer.current = undefined
      const which = [...pending.current]
      pending.current.clear()
      void refresh(which)
    }, BATCH_MS)
  }

  useEffect(() => {
    let stop: (() => void) | undefined
    let wasLost = false
    void (async () => {
      try {
        // the stream starts at the index read before the data, so no change falls between them
        const since = await storeIndex()
        // each view's data shows as it arrives: the map needs only hosts and subnets
        await Promise.all([api.status().then(setSelf), ...RESOURCES.map((r) => refresh([r]))])
        stop = watchStore(since, changed, (up) => {
          setLive(up ? 'live' : 'lost')
          // back after a drop: the stream caught up on what changed; read everything once more anyway,
          // since an agent restart starts a new store index
          if (up && wasLost) void refresh(RESOURCES)
          wasLost = !up
        })
      } catch (err) {
        setError((err as Error).message)
      }
    })()
    const onHash = () => setView(viewOf(location.hash))
    addEventListener('hashchange', onHash)
    return () => {
      stop?.()
      removeEventListener('hashchange', onHash)
    }
  }, [])

  // links are the agent's own state, not store records, so no change event names them: opening
  // the containers view reads them again (plexctl link made since the last endpoint change shows)
  useEffect(() => {
    if (view === 'containers') void refresh(['links'])
  }, [view])

  const subnetOf = useMemo(() => {
    const byPeer = new Map((data.subnets?.leases ?? []).map((l) => [l.peerId, l.subnet]))
    const out = new Map<string, string>()
    for (const h of data.hosts) {
      const s = byPeer.get(h.peerId)
      if (s) out.set(h.name, s)
    }
    return out
  }, [data.hosts, data.subnets])
  const host = data.hosts.find((h) => h.name === selected)

  return (
    <>
      <header>
        <h1>Plexus{self ? `: ${self.name}` : ''}</h1>
        <p role="status" class={`live live-${live}`} data-live={live}>
          {live === 'live'
            ? 'live'
            : live === 'lost'
              ? 'connection to the agent lost: reconnecting…'
              : 'connecting…'}
        </p>
      </header>
      <nav aria-label="views">
        <ul>
          {VIEWS.map(([v, label]) => (
            <li key={v}>
              <a href={`#${v}`} aria-current={view === v ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        {view === 'map' && (
          <div class="map-view">
            <div class="map-box">
              <ClusterMap hosts={data.hosts} subnetOf={subnetOf} selected={selected} onSelect={setSelected} />
              <p class="legend">
                Fill: state (green alive, amber suspect, red dead). Ring: zone. Edge colour: RTT from this
                host (green near, red far). Drag to pan, wheel or +/- to zoom, 0 to reset; click a host for
                details.
              </p>
            </div>
            {host && (
              <HostDetails
                host={host}
                subnet={subnetOf.get(host.name)}
                onClose={() => setSelected(undefined)}
              />
            )}
          </div>
        )}
        {view === 'hosts' && (
          <>
            <HostsTable hosts={data.hosts} subnetOf={subnetOf} onSelect={(name) => setSelected(name)} />
            {host && (
              <HostDetails
                host={host}
                subnet={subnetOf.get(host.name)}
                onClose={() => setSelected(undefined)}
              />
            )}
          </>
        )}
        {view === 'services' && <ServicesView services={data.services} version={version} />}
        {view === 'containers' && <ContainersView endpoints={data.endpoints} links={data.links} />}
        {view === 'jobs' && <JobsView jobs={data.jobs} allocs={data.allocs} version={version} />}
        {view === 'kv' && <KvView keys={data.kv} version={version} />}
        {view === 'trace' && (
          <TraceView endpoints={data.endpoints} services={data.services.map((x) => x.name)} />
        )}
      </main>
    </>
  )
}

render(<App />, document.getElementById('app') as HTMLElement)
