import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createClient } from '../../../src/cli/client.js'

// The client keeps connections alive (Node's default agent). An agent that closes one just as the
// client reuses it must not fail the call: the request is sent again, once, on a fresh connection.

async function serve(
  t: { teardown(fn: () => unknown): void },
  onRequest: (n: number, socketRequests: number) => 'answer' | 'drop',
) {
  const dir = mkdtempSync(join(tmpdir(), 'plx-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const socket = join(dir, 'api.sock')
  let n = 0
  const perSocket = new WeakMap<object, number>()
  const server: Server = createServer((req, res) => {
    const k = (perSocket.get(req.socket) ?? 0) + 1
    perSocket.set(req.socket, k)
    if (onRequest(++n, k) === 'drop') return req.socket.destroy()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ n, onSocket: k }))
  })
  await new Promise<void>((r) => server.listen(socket, r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return socket
}

t.test('a GET on a kept-alive connection the server drops is asked again on a new one', async (t) => {
  // the second request on any connection is dropped unanswered, as a closing keep-alive would
  const socket = await serve(t, (_, onSocket) => (onSocket === 2 ? 'drop' : 'answer'))
  const client = createClient(socket)
  t.same(await client.call('GET', '/a'), { n: 1, onSocket: 1 })
  t.same(
    await client.call('GET', '/b'),
    { n: 3, onSocket: 1 },
    'dropped on the reused connection, answered on a new one',
  )
})

t.test('a POST dropped after it was sent is not sent twice', async (t) => {
  const socket = await serve(t, (_, onSocket) => (onSocket === 2 ? 'drop' : 'answer'))
  const client = createClient(socket)
  await client.call('GET', '/a')
  await t.rejects(client.call('POST', '/b', { x: 1 }), 'the caller hears of it instead')
})

t.test(
  'a write refused as busy (503 PLX_API_BUSY) is sent again after Retry-After; other errors are not',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'plx-client-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const socket = join(dir, 'api.sock')
    const seen: number[] = []
    let busyFor = 2
    const server = createServer((req, res) => {
      seen.push(Date.now())
      res.setHeader('content-type', 'application/json')
      if (req.url === '/broken') {
        res.statusCode = 503
        return res.end(JSON.stringify({ error: 'PLX_OTHER', message: 'down' }))
      }
      if (busyFor-- > 0) {
        res.statusCode = 503
        res.setHeader('retry-after', '0')
        return res.end(JSON.stringify({ error: 'PLX_API_BUSY', message: 'busy' }))
      }
      res.end(JSON.stringify({ ok: true }))
    })
    await new Promise<void>((r) => server.listen(socket, r))
    t.teardown(() => new Promise<void>((r) => server.close(() => r())))
    const client = createClient(socket)
    t.same(await client.call('PUT', '/v1/kv/a', 1), { ok: true }, 'answered on the third try')
    t.equal(seen.length, 3, 'two refusals, then accepted')
    seen.length = 0
    await t.rejects(
      client.call('PUT', '/broken', 1),
      { status: 503, code: 'PLX_OTHER' },
      'another 503 is final',
    )
    t.equal(seen.length, 1, 'and sent once')
  },
)
