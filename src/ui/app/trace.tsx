// Trace (plexctl trace in the browser): pick a container and a container or service (resolved by
// the agent through Plexus DNS, as the source container would) and an optional port, and the agent
// walks the path through both hosts' kernels (POST /v1/trace), with a real probe packet if asked.
// The hops are drawn as a path, host by host, and listed in an ordered list with the same facts;
// the broken hop is marked in both (a colour and the word "broken", so the mark does not rest on
// colour alone) with its cause and fix.
import { useState } from 'preact/hooks'
import { api, type Endpoint, type TraceReply } from './api.js'

type Hop = TraceReply['hops'][number]

/** what a hop did, in a word a reader can scan: the kernel's verdict */
const ACTION: Record<Hop['action'], string> = {
  forwarded: '→',
  delivered: '✓',
  nat: '⇄',
  dropped: '✗',
  'no-answer': '?',
}

export function TraceView({ endpoints, services }: { endpoints: Endpoint[]; services: string[] }) {
  // containers by name: the trace route resolves names (and addresses) itself
  const names = [...new Set(endpoints.filter((e) => !e.withdrawn).map((e) => e.name))].sort()
  const [src, setSrc] = useState('')
  const [dst, setDst] = useState('')
  const [port, setPort] = useState('')
  const [probe, setProbe] = useState(false)
  const [busy, setBusy] = useState(false)
  const [reply, setReply] = useState<TraceReply | undefined>()
  const [message, setMessage] = useState('')

  const run = async (ev: Event) => {
    ev.preventDefault()
    setBusy(true)
    setMessage('')
    try {
      const p = Number(port)
      setReply(
        await api.trace({
          src,
          dst,
          ...(port && Number.isInteger(p) ? { port: p } : {}),
          ...(probe ? { probe: true } : {}),
        }),
      )
    } catch (err) {
      setReply(undefined)
      setMessage((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section class="trace" aria-label="trace">
      <form class="trace-form" onSubmit={run}>
        <ContainerSelect label="from" name="src" names={names} value={src} onChange={setSrc} />
        <ContainerSelect
          label="to"
          name="dst"
          names={names}
          services={services}
          value={dst}
          onChange={setDst}
        />
        <label>
          port (none: ping)
          <input
            name="port"
            inputMode="numeric"
            pattern="[0-9]{1,5}"
            size={6}
            value={port}
            onInput={(e) => setPort(e.currentTarget.value)}
          />
        </label>
        <label>
          <input
            type="checkbox"
            name="probe"
            checked={probe}
            onChange={(e) => setProbe(e.currentTarget.checked)}
          />
          send a probe packet
        </label>
        <button type="submit" disabled={busy || !src || !dst}>
          {busy ? 'tracing…' : 'Trace'}
        </button>
      </form>
      {message && (
        <p role="alert" class="error">
          {message}
        </p>
      )}
      {reply && <TraceResult reply={reply} />}
    </section>
  )
}

function ContainerSelect(p: {
  label: string
  name: string
  names: string[]
  /** services too (the destination): the agent resolves them through Plexus DNS */
  services?: string[]
  value: string
  onChange: (name: string) => void
}) {
  const options = (list: string[]) =>
    list.map((n) => (
      <option key={n} value={n}>
        {n}
      </option>
    ))
  return (
    <label>
      {p.label}
      <select name={p.name} value={p.value} required onChange={(e) => p.onChange(e.currentTarget.value)}>
        <option value="">{p.services ? 'container or service…' : 'container…'}</option>
        {p.services ? <optgroup label="containers">{options(p.names)}</optgroup> : options(p.names)}
        {p.services && p.services.length > 0 && <optgroup label="services">{options(p.services)}</optgroup>}
      </select>
    </label>
  )
}

function TraceResult({ reply }: { reply: TraceReply }) {
  const { flow, hops, diagnosis } = reply
  const broken = diagnosis.ok ? undefined : diagnosis.hop
  return (
    <div class="trace-result" data-ok={String(diagnosis.ok)} data-broken={broken ?? ''}>
      <p role="status" class={diagnosis.ok ? 'trace-ok' : 'trace-broken'}>
        {flow.srcName} ({flow.src}, {flow.srcHost}) → {flow.dstName} ({flow.dst}, {flow.dstHost}),{' '}
        {flow.proto}
        {flow.port ? ` port ${flow.port}` : ''}: {diagnosis.line} ({reply.durationMs} ms)
      </p>
      <PathDrawing hops={hops} broken={broken} />
      {reply.probe && (
        <div class="probe">
          <p>
            probe: {reply.probe.outcome}
            {reply.probe.rttMs === undefined ? '' : ` in ${reply.probe.rttMs.toFixed(2)} ms`}:{' '}
            {reply.probe.detail}
          </p>
          <ul>
            {reply.probe.seen.map((x) => (
              <li key={x.host}>
                {x.seen ? 'seen' : 'not seen'} on {x.host}: <code>{x.object}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      <ol class="hops">
        {hops.map((h, i) => (
          <li
            // by position: the same component can appear twice on a path (a veth on each host)
            key={i}
            class={`hop hop-${h.action}${i === broken ? ' hop-broken' : ''}`}
            data-component={h.component}
          >
            <strong>
              {i === broken ? 'broken: ' : ''}
              {h.host} {h.component}
            </strong>{' '}
            {h.action} by <code>{h.object}</code>
            {h.record && (
              <>
                {' '}
                (from <code>{h.record}</code>)
              </>
            )}
            {h.cause && <div class="cause">cause: {h.cause}</div>}
            {h.fix && <div class="fix">fix: {h.fix}</div>}
          </li>
        ))}
      </ol>
    </div>
  )
}

const STEP = 120
const ROW = 70

/**
 * The hops as a path of boxes, one row per host in the order the packet meets them (source host
 * first): a picture of where it went and where it stopped. The list below it carries the same
 * facts for keyboard and screen-reader users, so the drawing is hidden from them.
 */
function PathDrawing({ hops, broken }: { hops: Hop[]; broken: number | undefined }) {
  const rows: string[] = []
  for (const h of hops) if (!rows.includes(h.host)) rows.push(h.host)
  const at = hops.map((h, i) => ({ x: 90 + i * STEP, y: 30 + rows.indexOf(h.host) * ROW }))
  const width = 90 + hops.length * STEP
  const height = 30 + rows.length * ROW
  return (
    <svg class="trace-path" width={width} height={height} aria-hidden="true">
      {rows.map((host, r) => (
        <text key={host} x={4} y={34 + r * ROW} class="trace-host">
          {host}
        </text>
      ))}
      {at.slice(1).map((p, i) => {
        const from = at[i] as { x: number; y: number }
        return (
          <line
            key={i}
            x1={from.x}
            y1={from.y}
            x2={p.x}
            y2={p.y}
            class={broken !== undefined && i + 1 > broken ? 'seg seg-after' : 'seg'}
          />
        )
      })}
      {hops.map((h, i) => {
        const p = at[i] as { x: number; y: number }
        return (
          <g key={i} class={`node node-${h.action}${i === broken ? ' node-broken' : ''}`}>
            <circle cx={p.x} cy={p.y} r={i === broken ? 14 : 10} />
            <text x={p.x} y={p.y + 4} text-anchor="middle">
              {ACTION[h.action]}
            </text>
            <text x={p.x} y={p.y + 28} text-anchor="middle" class="node-label">
              {h.component}
            </text>
          </g>
        )
      })}
    </svg>
  )
}
