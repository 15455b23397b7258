// The heap reading of bench/conn-soak, run inside the agent's namespace once
// the agent's inspector is open (SIGUSR1, on 127.0.0.1:9229): a full garbage
// collection through the inspector, then the agent's process.memoryUsage().
// The agent's own heapUsed counts garbage not yet collected (it lets its old
// generation grow to twice its live size before a full collection), so only a
// reading after a full collection says what the agent holds. Prints one JSON
// line: { rss, heapUsed } in bytes.
import '../src/lib/polyfill.js'

const INSPECTOR = 'http://127.0.0.1:9229/json/list'

const targets = (await (await fetch(INSPECTOR)).json()) as { webSocketDebuggerUrl: string }[]
const url = targets[0]?.webSocketDebuggerUrl
if (!url) throw new Error(`no inspector target at ${INSPECTOR}`)
// Node 20: WebSocket needs --experimental-websocket
const ws = new WebSocket(url)
const pending = new Map<number, (result: unknown) => void>()
let nextId = 1
ws.addEventListener('message', (evt) => {
  const msg = JSON.parse(String(evt.data)) as { id?: number; result?: unknown; error?: unknown }
  if (msg.id === undefined) return
  if (msg.error) throw new Error(`inspector: ${JSON.stringify(msg.error)}`)
  pending.get(msg.id)?.(msg.result)
})
await new Promise((resolve, reject) => {
  ws.addEventListener('open', resolve)
  ws.addEventListener('error', reject)
})
const call = (method: string, params: object = {}) =>
  new Promise<unknown>((resolve) => {
    const id = nextId++
    pending.set(id, resolve)
    ws.send(JSON.stringify({ id, method, params }))
  })
// twice: the first collection's finalizers (timers of collected abort signals) run before the second
await call('HeapProfiler.collectGarbage')
await new Promise((r) => setTimeout(r, 1000))
await call('HeapProfiler.collectGarbage')
const res = (await call('Runtime.evaluate', {
  expression: 'JSON.stringify({ rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed })',
  returnByValue: true,
})) as { result: { value: string } }
ws.close()
process.stdout.write(`${res.result.value}\n`)
