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
