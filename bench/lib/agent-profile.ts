// Where a running fixture agent spends its CPU under a load: its inspector is
// opened with SIGUSR1 (Node's own switch: the agent's command line cannot be
// changed from outside, and NODE_OPTIONS does not take --cpu-prof), the V8
// sampling profiler runs over the load, and the profile is written as a
// .cpuprofile (Chrome DevTools, speedscope) with its heaviest functions by self
// time. The inspector listens on 127.0.0.1:9229 of the agent's network
// namespace, so this runs there (lib/inner.ts; Node 20 needs --experimental-websocket).
import { writeFileSync } from 'node:fs'
import { basename } from 'node:path'

interface Socket {
  onopen: (() => void) | null
  onerror: ((e: unknown) => void) | null
  onmessage: ((e: { data: string }) => void) | null
  send(data: string): void
  close(): void
}
declare const WebSocket: new (url: string) => Socket

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpot {
  fn: string
  pct: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Self time by function (name, file:line), heaviest first, as % of the samples' time. */
export function hotSpots(p: CpuProfile, top = 25): HotSpot[] {
  const frameOf = new Map(p.nodes.map((n) => [n.id, n.callFrame]))
  const self = new Map<string, number>()
  let total = 0
  p.samples.forEach((id, k) => {
    const f = frameOf.get(id)
    const dt = p.timeDeltas[k] ?? 0
    const key = f
      ? `${f.functionName || '(anonymous)'}${f.url ? ` ${basename(f.url)}:${f.lineNumber + 1}` : ''}`
      : '?'
    self.set(key, (self.get(key) ?? 0) + dt)
    total += dt
  })
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, pct: Math.round((1000 * us) / total) / 10 }))
}

/** Profiles process pid (in this network namespace) while load() runs; writes the profile to out. */
export async function profileWhile<T>(
  pid: number,
  out: string,
  load: () => T,
): Promise<{ result: T; top: HotSpot[] }> {
  process.kill(pid, 'SIGUSR1')
  let url: string | undefined
  for (let i = 0; i < 100 && !url; i++) {
    try {
      const list = (await (await fetch('http://127.0.0.1:9229/json/list')).json()) as {
        webSocketDebuggerUrl: string
      }[]
      url = list[0]?.webSocketDebuggerUrl
    } catch {
      await sleep(100)
    }
  }
  if (!url) throw new Error(`no inspector of pid ${pid} on 127.0.0.1:9229`)
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve()
    ws.onerror = reject
  })
  const pending = new Map<number, (r: unknown) => void>()
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data) as { id?: number; result?: unknown }
    if (m.id !== undefined) pending.get(m.id)?.(m.result)
  }
  let seq = 0
  const send = <R>(method: string, params: object = {}) =>
    new Promise<R>((resolve) => {
      const id = ++seq
      pending.set(id, resolve as (r: unknown) => void)
      ws.send(JSON.stringify({ id, method, params }))
    })
  await send('Profiler.enable')
  await send('Profiler.setSamplingInterval', { interval: 200 })
  await send('Profiler.start')
  const result = load()
  const { profile } = await send<{ profile: CpuProfile }>('Profiler.stop')
  ws.close()
  writeFileSync(out, JSON.stringify(profile))
  return { result, top: hotSpots(profile) }
}
