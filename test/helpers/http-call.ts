// A tiny HTTP client run inside a namespace (`cluster exec --ctr … -- node
// http-call.js …`), where the test process itself cannot go; one process for
// many requests, since each spawn costs a node start-up:
//   node http-call.js CALLS '[{"method","url","body"?}…]'  prints a JSON array of {status, body}
//   node http-call.js WATCH URL KEY   prints each SSE event "<event> <key>" until a put of KEY
import { openSse } from './sse.js'

interface Call {
  method: string
  url: string
  body?: unknown
}

const [mode, arg1, arg2] = process.argv.slice(2) as [string, string, string | undefined]
if (mode === 'WATCH') {
  const u = new URL(arg1)
  const s = await openSse({ host: u.hostname, port: Number(u.port), path: u.pathname + u.search })
  console.log(`status ${s.status}`)
  for (;;) {
    const e = await s.next(() => true, 30_000)
    const key = e.event === 'put' ? (JSON.parse(e.data) as { key: string }).key : ''
    console.log(`${e.event} ${key}`)
    if (e.event === 'put' && key === arg2) break
  }
  s.close()
} else {
  const out: { status: number; body: unknown }[] = []
  for (const c of JSON.parse(arg1) as Call[]) {
    try {
      const res = await fetch(c.url, {
        method: c.method,
        ...(c.body !== undefined
          ? { body: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } }
          : {}),
      })
      const text = await res.text()
      out.push({ status: res.status, body: text ? JSON.parse(text) : null })
    } catch (err) {
      out.push({ status: 0, body: String(err) })
    }
  }
  console.log(JSON.stringify(out))
}
