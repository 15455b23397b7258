// The native front end (cni/front/plexus.c) as built into dist/cni/bin/plexus:
// what it forwards to the socket the config names, how it prints the answer,
// and that anything it cannot forward goes to the Node plugin beside it. The
// socket here is served by the test, so each byte forwarded can be checked;
// the whole path through a real agent is what every CNI integration test runs.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { REPO } from '../../helpers/fixture.js'

const FRONT = join(REPO, 'dist/cni/bin/plexus')

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

function front(env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(FRONT, [], { env: { PATH: process.env.PATH ?? '', ...env } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => {
      stdout += d
    })
    p.stderr.on('data', (d) => {
      stderr += d
    })
    p.on('close', (status) => resolve({ status, stdout, stderr }))
    p.stdin.end(stdin)
  })
}

/** A socket that records each request and answers with `reply`. */
async function agent(t: Test, reply: string): Promise<{ path: string; requests: string[] }> {
  const dir = mkdtempSync('/tmp/plexus-front-')
  const path = join(dir, 'agent.sock')
  const requests: string[] = []
  const server: Server = createServer((conn) => {
    let got = ''
    conn.on('data', (d) => {
      got += d
      const head = got.indexOf('\r\n\r\n')
      const length = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? -1)
      if (head >= 0 && Buffer.byteLength(got) - head - 4 >= length) {
        requests.push(got)
        conn.end(reply)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(() => {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { path, requests }
}

const answer = (exit: number, stderr: string, stdout: string) =>
  `HTTP/1.1 200 OK\r\nplexus-cni-exit: ${exit}\r\nplexus-cni-stderr: ${Buffer.byteLength(stderr)}\r\n` +
  `content-length: ${Buffer.byteLength(stderr + stdout)}\r\nconnection: close\r\n\r\n${stderr}${stdout}`

const bodyOf = (request: string) => JSON.parse(request.slice(request.indexOf('\r\n\r\n') + 4))

t.test('forwards env and stdin to the top-level socket, prints the answer as the plugin would', async (t) => {
  const a = await agent(t, answer(1, 'plexus: a warning\n', '{"code":7}\n'))
  // a "socket" inside a nested value is not the config's; escapes in the path are read as JSON reads them
  const stdin = `{"cniVersion":"1.1.0","x":{"socket":"/nowhere","y":["}",{"socket":1}]},"name":"n\\t\u00e9","socket":"${a.path.replaceAll('/', '\\/')}"}`
  const r = await front(
    { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'A=1;B="q"', NOT_CNI: 'x' },
    stdin,
  )
  t.equal(r.status, 1, 'the exit status the agent gave')
  t.equal(r.stderr, 'plexus: a warning\n')
  t.equal(r.stdout, '{"code":7}\n')
  t.equal(a.requests.length, 1)
  t.match(a.requests[0], /^POST \/v1\/cni\/invoke HTTP\/1\.1\r\n/)
  const body = bodyOf(a.requests[0] ?? '')
  t.same(
    body.env,
    { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'A=1;B="q"' },
    'the CNI_* variables only',
  )
  t.equal(body.stdin, stdin, 'stdin byte for byte')
  t.notOk('netnsHandle' in body, 'GC holds no namespace')
})

t.test('ADD holds the namespace open and names it by pid, descriptor and inode', async (t) => {
  const a = await agent(t, answer(0, '', '{"cniVersion":"1.1.0"}\n'))
  const r = await front(
    {
      CNI_COMMAND: 'ADD',
      CNI_NETNS: '/proc/self/ns/net',
      CNI_CONTAINERID: 'c',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/',
    },
    JSON.stringify({ cniVersion: '1.1.0', socket: a.path }),
  )
  t.equal(r.status, 0)
  t.equal(r.stdout, '{"cniVersion":"1.1.0"}\n')
  const h = bodyOf(a.requests[0] ?? '').netnsHandle
  t.ok(h.pid > 1 && h.fd > 2 && h.ino > 0, `handle ${JSON.stringify(h)}`)
})

t.test('what it cannot forward goes to the Node plugin, stdin included', async (t) => {
  const dir = mkdtempSync('/tmp/plexus-front-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const nobody = join(dir, 'none.sock')
  const refused = await agent(t, 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
  const cases: [string, string][] = [
    ['no agent at the socket', JSON.stringify({ cniVersion: '0.4.0', socket: nobody })],
    ['an agent without the route', JSON.stringify({ cniVersion: '0.4.0', socket: refused.path })],
    ['a socket that is not an absolute path', '{"cniVersion":"0.4.0","socket":"rel.sock"}'],
  ]
  const add = {
    CNI_COMMAND: 'ADD',
    CNI_NETNS: '/proc/self/ns/net',
    CNI_CONTAINERID: 'c',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/',
  }
  for (const [why, stdin] of cases) {
    const r = await front(add, stdin.replace('{', '{"bogus":1,'))
    t.equal(r.status, 1, why)
    // the Node plugin's error, in the version the config names: it read the same stdin
    t.match(JSON.parse(r.stdout), { cniVersion: '0.4.0', code: 2, msg: /unsupported field "bogus"/ }, why)
  }
  const bad = await front(add, '{"cniVersion": "1.1.0", ')
  t.equal(bad.status, 1, 'JSON it cannot read')
  t.match(JSON.parse(bad.stdout), { code: 6, msg: /not valid JSON/ }, 'the Node plugin reports it')
  t.equal(refused.requests.length, 1, 'the agent without the route was asked once')
})
