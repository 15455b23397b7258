import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { callAgent, parseResponse } from '../../../cni/lib/client.js'
import { CniCode } from '../../../cni/lib/errors.js'

t.test('parseResponse: content-length, chunked, and anything cut short', async (t) => {
  const ok = parseResponse(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{"a":1}'))
  t.same(ok, { status: 200, body: '{"a":1}' })
  t.same(
    parseResponse(
      Buffer.from(
        'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n',
      ),
    ),
    { status: 201, body: '{"a":1}' },
  )
  t.same(parseResponse(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')), { status: 204, body: '' })
  t.equal(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{"a":1}')), undefined)
  t.equal(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\ncontent-le')), undefined, 'headers cut short')
  t.equal(
    parseResponse(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\n{"a"')),
    undefined,
    'chunk cut short',
  )
  t.equal(parseResponse(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), undefined, 'not HTTP')
})

/** A real HTTP server on a unix socket in a temp dir, removed after the test. */
async function serve(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-client-'))
  const socket = join(dir, 'agent.sock')
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(socket, r))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })
  return socket
}

t.test('callAgent against a real HTTP server on a unix socket', async (t) => {
  const seen: { method?: string; url?: string; body: string; type?: string }[] = []
  const socket = await serve(t, (req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body, type: req.headers['content-type'] })
      if (req.url === '/ok') return res.end(JSON.stringify({ got: JSON.parse(body || 'null') }))
      if (req.url === '/chunked') {
        res.write('{"parts":')
        return setTimeout(() => res.end('[1,2]}'), 10)
      }
      if (req.url === '/cni-error') {
        res.statusCode = 400
        return res.end(JSON.stringify({ cni: { code: 7, msg: 'bad config', details: 'x' } }))
      }
      if (req.url === '/busy') {
        res.statusCode = 503
        return res.end(JSON.stringify({ error: 'PLX_NO_LEASE', message: 'no lease yet' }))
      }
      if (req.url === '/html') return res.end('<html>')
      if (req.url === '/hang') return // never answers
      if (req.url === '/cut') return res.socket?.destroy()
    })
  })
  t.same(await callAgent(socket, 'POST', '/ok', { x: 'ü' }), { got: { x: 'ü' } })
  t.match(seen[0], { method: 'POST', url: '/ok', type: 'application/json' })
  t.same(await callAgent(socket, 'GET', '/chunked'), { parts: [1, 2] })
  t.equal(seen[1]?.body, '', 'GET sends no body')
  await t.rejects(callAgent(socket, 'GET', '/cni-error'), { code: 7, msg: 'bad config', details: 'x' })
  await t.rejects(callAgent(socket, 'GET', '/busy'), {
    code: CniCode.TRY_AGAIN_LATER,
    msg: 'plexusd: no lease yet',
  })
  await t.rejects(callAgent(socket, 'GET', '/html'), { code: CniCode.INTERNAL, msg: /not JSON \(HTTP 200\)/ })
  await t.rejects(callAgent(socket, 'GET', '/cut'), { code: CniCode.TRY_AGAIN_LATER })
  await t.rejects(callAgent(socket, 'GET', '/hang', undefined, 200), {
    code: CniCode.TRY_AGAIN_LATER,
    details: /ETIMEDOUT/,
  })
})

t.test('no agent at all, or something else on the socket: try again later', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await t.rejects(callAgent(join(dir, 'none.sock'), 'GET', '/'), {
    code: CniCode.TRY_AGAIN_LATER,
    details: /ENOENT/,
  })
  // a listener that closes every connection at once (an agent shutting down)
  const socket = join(dir, 'closing.sock')
  const server: Server = createNetServer((c) => c.destroy())
  await new Promise<void>((r) => server.listen(socket, r))
  t.teardown(() => new Promise((r) => server.close(r)))
  await t.rejects(callAgent(socket, 'GET', '/'), { code: CniCode.TRY_AGAIN_LATER })
})
