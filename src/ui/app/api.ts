// The UI's reads and writes: same-origin fetches of the agent's /v1 routes (the page is served by
// the agent, or by `plexctl ui` in front of it), and the watch stream for live updates.
import type { TraceReply, TraceRequest } from '../../api/contract/diag.js'
import type { EndpointsReply } from '../../api/contract/endpoints.js'
import type { Host, HostsReply } from '../../api/contract/hosts.js'
import type { AllocLine, JobLine, JobRebalanceReply } from '../../api/contract/jobs.js'
import type { KvEntry } from '../../api/contract/kv.js'
import type { Link } from '../../api/contract/links.js'
import type { ServiceDetail, ServiceMember, ServiceSummary } from '../../api/contract/services.js'
import type { StatusReply } from '../../api/contract/status.js'
import type { SubnetsReply } from '../../api/contract/subnets.js'

export type {
  AllocLine,
  Host,
  JobLine,
  JobRebalanceReply,
  KvEntry,
  Link,
  ServiceMember,
  ServiceSummary,
  StatusReply,
  SubnetsReply,
  TraceReply,
  TraceRequest,
}
export type Endpoint = EndpointsReply['endpoints'][number]

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  const data = text ? (JSON.parse(text) as unknown) : undefined
  if (!res.ok) {
    const e = data as { error?: string; message?: string } | undefined
    throw new ApiError(res.status, e?.error ?? 'PLX_API_ERROR', e?.message ?? `HTTP ${res.status}`)
  }
  return data as T
}

const kvPath = (key: string) => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`

export const api = {
  status: () => call<StatusReply>('GET', '/v1/status'),
  hosts: async () => (await call<HostsReply>('GET', '/v1/hosts')).hosts,
  subnets: () => call<SubnetsReply>('GET', '/v1/subnets'),
  endpoints: async () => (await call<EndpointsReply>('GET', '/v1/endpoints')).endpoints,
  services: () => call<ServiceSummary[]>('GET', '/v1/services'),
  service: (name: string) => call<ServiceDetail>('GET', `/v1/services/${encodeURIComponent(name)}`),
  jobs: () => call<JobLine[]>('GET', '/v1/jobs'),
  allocs: () => call<AllocLine[]>('GET', '/v1/allocs'),
  /** where a job runs, every host's verdict for each group, its network cost now and placed afresh */
  jobExplain: (name: string) =>
    call<JobRebalanceReply>('GET', `/v1/jobs/${encodeURIComponent(name)}/explain`),
  /** this agent's links (Docker-style, `plexctl link` and job tasks'), with where each points now */
  links: () => call<Link[]>('GET', '/v1/links'),
  kvKeys: () => call<string[]>('GET', '/v1/kv/?keys'),
  kvGet: (key: string) => call<KvEntry>('GET', kvPath(key)),
  /** written only if the key is still at `cas` (0: only if absent), so two editors cannot overwrite each other */
  kvPut: (key: string, value: unknown, cas: number) =>
    call<KvEntry>('PUT', `${kvPath(key)}?cas=${cas}`, value),
  kvDelete: (key: string, cas: number) => call<{ deleted: number }>('DELETE', `${kvPath(key)}?cas=${cas}`),
  /** hop by hop through both hosts' kernels (plexctl trace) */
  trace: (req: TraceRequest) => call<TraceReply>('POST', '/v1/trace', req),
}

/** the store's change counter now (X-Plexus-Index of a KV read): where the watch stream starts */
export async function storeIndex(): Promise<number> {
  const res = await fetch('/v1/kv/?keys', { method: 'HEAD' })
  return Number(res.headers.get('x-plexus-index') ?? 0)
}

const RETRY_MS = 2000

/**
 * Follows every store change through GET /v1/watch/ (Server-Sent Events) from index `since`:
 * `onChange(key)` per change (undefined: re-read everything, after a reset), `onLive(false)`
 * when the stream drops, `onLive(true)` once it is back and caught up. EventSource reconnects
 * by itself with Last-Event-ID, so nothing is missed; when it gives up (the agent answered with
 * an error, or restarted without the route) a new one is opened from the last index seen.
 */
export function watchStore(
  since: number,
  onChange: (key: string | undefined) => void,
  onLive: (live: boolean) => void,
): () => void {
  let last = since
  let es: EventSource | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const open = () => {
    es = new EventSource(`/v1/watch/?index=${last}`)
    const change = (ev: MessageEvent<string>) => {
      if (ev.lastEventId) last = Number(ev.lastEventId)
      let key: unknown
      try {
        key = (JSON.parse(ev.data) as { key?: unknown }).key
      } catch {
        key = undefined
      }
      onChange(typeof key === 'string' ? key : undefined)
    }
    for (const name of ['put', 'delete', 'expire']) es.addEventListener(name, change)
    es.addEventListener('reset', () => onChange(undefined))
    es.addEventListener('synced', (ev) => {
      if (ev.lastEventId) last = Number(ev.lastEventId)
      onLive(true)
    })
    es.onerror = () => {
      onLive(false)
      if (es?.readyState === EventSource.CLOSED && !stopped) {
        timer = setTimeout(open, RETRY_MS)
      }
    }
  }
  open()
  return () => {
    stopped = true
    clearTimeout(timer)
    es?.close()
  }
}
