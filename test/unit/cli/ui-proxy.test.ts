import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createClient } from '../../../src/cli/client.js'
import { startUiProxy } from '../../../src/cli/ui-proxy.js'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * a stand-in agent that echoes what it was asked, on a unix socket (or, remote, on a loopback TCP
 * port reached with a token), and the proxy in front
 */
async function setup(t: { teardown(fn: () => unknown): void }, remote?: { token: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-ui-proxy-'))
  const socket = join(dir, 'api.sock')
  const agent = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const { cookie, authorization } = req.headers
    res.end(JSON.stringify({ path: req.url, cookie: cookie ?? null, authorization: authorization ?? null }))
  })
  await new Promise<void>((resolve) =>
    remote ? agent.listen(0, '127.0.0.1', resolve) : agent.listen(socket, resolve),
  )
  const at = agent.address()
  const client = remote
    ? createClient({
        url: new URL(`http://127.0.0.1:${typeof at === 'object' && at ? at.port : 0}`),
        token: remote.token,
      })
    : createClient(socket)
  const proxy = await startUiProxy(client, 0)
  t.teardown(async () => {
    proxy.server.closeAllConnections()
    await new Promise((r) => proxy.server.close(r))
    await new Promise((r) => agent.close(r))
    rmSync(dir, { recursive: true, force: true })
  })
  const url = new URL(proxy.url)
  return { url, port: Number(url.port), host: url.host, token: url.searchParams.get('token') as string }
}

t.test('the printed URL trades its token for a cookie; with it requests reach the socket', async (t) => {
  const { url, port, host, token } = await setup(t)
  t.equal(url.hostname, '127.0.0.1')
  t.equal(url.pathname, '/ui/')
  t.ok(token.length >= 32, 'a long random token')
  const first = await get(port, `/ui/?token=${token}`, { host })
  t.equal(first.status, 303)
  t.equal(first.headers.location, '/ui/', 'the token leaves the address bar')
  const cookie = String(first.headers['set-cookie']).split(';')[0] as string
  t.match(String(first.headers['set-cookie']), /HttpOnly; SameSite=Strict/)
  const through = await get(port, '/v1/hosts', { host, cookie })
  t.equal(through.status, 200)
  t.same(
    JSON.parse(through.body),
    { path: '/v1/hosts', cookie: null, authorization: null },
    'forwarded, without our cookie',
  )
})

t.test('plexctl -H: a remote agent gets the operator token, the browser never holds it', async (t) => {
  const { port, host, token } = await setup(t, { token: 'plx_secret' })
  const first = await get(port, `/ui/?token=${token}`, { host })
  const cookie = String(first.headers['set-cookie']).split(';')[0] as string
  t.notMatch(JSON.stringify(first.headers), /plx_secret/, 'not in what the browser is sent')
  const through = await get(port, '/v1/kv/app/x', { host, cookie })
  t.same(
    JSON.parse(through.body),
    { path: '/v1/kv/app/x', cookie: null, authorization: 'Bearer plx_secret' },
    'forwarded with the token, without our cookie',
  )
})

t.test('no token, a wrong token or a foreign Host header are refused before the socket', async (t) => {
  const { port, host, token } = await setup(t)
  const none = await get(port, '/v1/hosts', { host })
  t.equal(none.status, 403)
  t.equal(JSON.parse(none.body).error, 'PLX_UI_BAD_TOKEN')
  const wrong = await get(port, '/v1/hosts', { host, cookie: `plexus_ui=${'x'.repeat(token.length)}` })
  t.equal(wrong.status, 403)
  t.equal((await get(port, '/ui/?token=nope', { host })).status, 403)
  // a DNS-rebinding page reaches this port under its own name
  const rebound = await get(port, `/ui/?token=${token}`, { host: `evil.example:${port}` })
  t.equal(rebound.status, 421)
  t.equal(JSON.parse(rebound.body).error, 'PLX_UI_BAD_HOST')
})
