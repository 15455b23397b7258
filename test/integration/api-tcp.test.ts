// The operator API over TCP with tokens and TLS (issue 14 item 2), from another
// host's namespace: no token → 401, a read-only token → reads pass and writes
// get 403 naming the rule, a write token writes, policies stay on the unix
// socket, plain HTTP and an untrusted server are refused, a deleted token is
// refused; `plexctl -H … ui` serves the web UI of h1 on h2's loopback with the
// token's rights, never handing the token to the browser. The certificates come
// from `plexctl tls init`.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { hostNs, UNDERLAY_PREFIX } from '../../netns-fixtures/lib/state.js'
import { eventually, PLEXCTL, run, upCluster } from '../helpers/fixture.js'

t.setTimeout(300_000)

const H1 = `${UNDERLAY_PREFIX}.11`
const PORT = 7375

t.test('plexctl -H https://… with tokens', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // one certificate for both agents' addresses: the test needs one listener to be right, not two files
  const init = run(PLEXCTL, ['tls', 'init', '--dir', dir, '--host', `agents=${H1},${UNDERLAY_PREFIX}.12`])
  t.equal(init.status, 0, `plexctl tls init: ${init.stderr}`)
  const c = upCluster(t, {
    hosts: 2,
    prefix: 'tt',
    agentConfig: {
      api: {
        listen: `0.0.0.0:${PORT}`,
        tls: { certFile: join(dir, 'agents.pem'), keyFile: join(dir, 'agents-key.pem') },
      },
    },
  })
  const policy = (name: string, rules: string) => {
    const f = join(dir, `${name}.yaml`)
    writeFileSync(f, `name: ${name}\nrules:\n${rules}`)
    t.equal(c.exec('h1', ['plexctl', 'acl', 'policy', 'put', f]).status, 0, `policy ${name}`)
  }
  policy('reader', '  - { operator: read }\n  - { kv: "", access: read }\n')
  policy('writer', '  - { operator: read }\n  - { kv: config/, access: write }\n')
  const token = (name: string, pol: string): string => {
    const secret = c.exec('h1', ['plexctl', 'acl', 'token', 'create', name, '--policy', pol]).stdout.trim()
    t.match(secret, /^plx_[A-Za-z0-9_-]{43}$/, `token ${name} made`)
    const f = join(dir, `${name}.token`)
    writeFileSync(f, `${secret}\n`)
    return f
  }
  const ro = token('ro', 'reader')
  const rw = token('rw', 'writer')
  const bad = join(dir, 'bad.token')
  writeFileSync(bad, 'plx_0000000000000000000000000000000000000000000\n')
  t.equal(c.exec('h1', ['plexctl', 'kv', 'put', 'config/app/x', '1']).status, 0)

  /** plexctl on h2 against h1's TCP listener */
  const remote = (args: string[], opts: { token?: string; url?: string; ca?: boolean } = {}) =>
    c.exec('h2', [
      'plexctl',
      '-H',
      opts.url ?? `https://${H1}:${PORT}`,
      ...(opts.ca === false ? [] : ['--ca-file', join(dir, 'ca.pem')]),
      ...(opts.token ? ['--token-file', opts.token] : []),
      ...args,
    ])
  const up = await eventually(
    () => remote(['kv', 'get', 'config/app/x'], { token: ro }).status === 0,
    20_000,
    250,
  )
  t.ok(up, 'the listener answers a read with a read-only token')

  const none = remote(['kv', 'get', 'config/app/x'])
  t.equal(none.status, 1, 'no token: refused')
  t.match(none.stderr, /PLX_API_NO_TOKEN/)
  t.match(
    remote(['kv', 'get', 'config/app/x'], { token: bad }).stderr,
    /PLX_API_BAD_TOKEN/,
    'an unknown token',
  )

  const roPut = remote(['kv', 'put', 'config/app/y', '2'], { token: ro })
  t.equal(roPut.status, 1, 'a read-only token cannot write')
  t.match(roPut.stderr, /denied by policy "reader" kv "" read.*PLX_ACL_DENIED/)
  t.equal(remote(['hosts'], { token: ro }).status, 0, 'operator read: plexctl hosts')
  const drain = remote(['hosts', 'drain', 'h2'], { token: ro })
  t.match(drain.stderr, /operator write: denied by policy "reader" operator read/, 'operator write refused')

  t.equal(remote(['kv', 'put', 'config/app/y', '2'], { token: rw }).status, 0, 'a write token writes')
  t.equal(c.plexctlJson<{ value: unknown }>('h1', ['kv', 'get', 'config/app/y']).value, 2, 'and it is stored')
  t.match(
    remote(['kv', 'put', 'jobs/x', '1'], { token: rw }).stderr,
    /denied by default policy deny/,
    'outside its rules a token has nothing (default deny whatever acl/default says)',
  )
  t.match(
    remote(['acl', 'policy', 'ls'], { token: rw }).stderr,
    /managed on the unix socket only/,
    'no token manages policies',
  )

  const plain = remote(['kv', 'get', 'config/app/x'], { token: ro, url: `http://${H1}:${PORT}` })
  t.equal(plain.status, 1, 'plain HTTP is refused on a TLS listener')
  const untrusted = remote(['kv', 'get', 'config/app/x'], { token: ro, ca: false })
  t.equal(untrusted.status, 1, 'a server certificate from an unknown CA is refused by the client')
  t.match(untrusted.stderr, /certificate/)

  // the web UI of h1 through plexctl ui on h2 with the read-only token: a browser (curl with a
  // cookie jar) reads with the token's rights, is refused a write naming the rule, and never sees the token
  const ns = hostNs(c.name, 'h2')
  const ui = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      PLEXCTL,
      '-H',
      `https://${H1}:${PORT}`,
      '--ca-file',
      join(dir, 'ca.pem'),
      '--token-file',
      ro,
      'ui',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  t.teardown(() => ui.kill('SIGTERM'))
  const url = await new Promise<string | undefined>((resolve) => {
    let out = ''
    ui.stdout.on('data', (b: Buffer) => {
      out += b
      const m = /(http:\/\/127\.0\.0\.1:\d+\/ui\/\?token=\S+)/.exec(out)
      if (m) resolve(m[1])
    })
    ui.once('exit', () => resolve(undefined))
  })
  t.ok(url, `plexctl -H … ui printed ${url}`)
  const jar = join(dir, 'jar')
  const browser = (path: string, ...extra: string[]) =>
    run('ip', [
      'netns',
      'exec',
      ns,
      'curl',
      '-s',
      '-b',
      jar,
      '-c',
      jar,
      '-D',
      '-',
      ...extra,
      new URL(path, url).href,
    ])
  const page = browser(url as string, '-L')
  t.match(page.stdout, /<div id="app">/, 'the UI page, served by h1 over TLS with the token')
  t.notMatch(page.stdout, /plx_/, 'no token in what the browser gets')
  t.match(browser('/v1/kv/config/app/x').stdout, /"value":\s*1/, 'a KV read with the token')
  const denied = browser(
    '/v1/kv/config/app/z',
    '-X',
    'PUT',
    '-H',
    'content-type: application/json',
    '--data',
    '3',
  )
  t.match(
    denied.stdout,
    /403[\s\S]*PLX_ACL_DENIED[\s\S]*policy \\?"reader\\?"/,
    'a KV write the token may not: 403 naming the rule',
  )

  t.equal(c.exec('h1', ['plexctl', 'acl', 'token', 'rm', 'ro']).status, 0)
  t.match(remote(['kv', 'get', 'config/app/x'], { token: ro }).stderr, /PLX_API_BAD_TOKEN/, 'a deleted token')
})
