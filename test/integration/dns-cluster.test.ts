// Issue 6 end to end on the 3-host test bed: a client on h3 finds `web`
// (endpoints on h1 and h2) by name, connects, gets SRV; a failed health check
// takes an endpoint out of every host's answers and a passing one brings it
// back; names outside the zone are forwarded to the fixture's stub upstream.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { eventually, upCluster } from '../helpers/fixture.js'
import { hostApi } from '../helpers/runner.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

const TTL_S = 5
const INTERVAL_S = 1
const FAILURES = 1

t.test('service discovery across three hosts', async (t) => {
  const c = upCluster(t, { hosts: 3, prefix: 'dn' })
  const www = mkdtempSync(join(tmpdir(), 'plexus-dns-'))
  t.teardown(() => rmSync(www, { recursive: true, force: true }))

  const def = c.exec('h1', [
    'plexctl',
    'service',
    'register',
    'web',
    '--port',
    'http:80/tcp',
    '--check',
    'http:80/',
    '--interval',
    `${INTERVAL_S}s`,
    '--timeout',
    '500ms',
    '--failures',
    String(FAILURES),
  ])
  t.equal(def.status, 0, def.stderr)

  // each web server runs under a shell that records its pid, so the test can stop exactly that process
  const serve = (host: string, ctr: string) => {
    writeFileSync(join(www, `${ctr}.html`), `hello from ${ctr}\n`)
    const dir = join(www, ctr)
    const r = c.run(
      host,
      ctr,
      [
        'sh',
        '-c',
        `mkdir -p ${dir} && cp ${www}/${ctr}.html ${dir}/index.html && busybox httpd -f -p 80 -h ${dir} & echo $! > ${www}/${ctr}.pid; wait`,
      ],
      ['--service', 'web', '--expose', '80'],
    )
    t.equal(r.status, 0, r.stderr)
  }
  serve('h1', 'web1')
  serve('h2', 'web2')
  t.equal(c.run('h3', 'client', ['sleep', '600']).status, 0)

  const ctrIp = (ctr: string) =>
    c.execCtr(ctr, ['ip', '-4', '-o', 'addr', 'show', 'eth0']).stdout.match(/inet (\S+)\//)?.[1] ?? ''
  const web1 = ctrIp('web1')
  const web2 = ctrIp('web2')
  t.ok(web1 && web2, `addresses ${web1} ${web2}`)
  const both = [web1, web2].sort().join(' ')
  const digShort = (...args: string[]) =>
    c
      .execCtr('client', ['dig', '+short', '+time=2', '+tries=1', ...args])
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .sort()
      .join(' ')

  t.equal(
    await eventually(() => digShort('+search', 'web') === both, 20_000, 250),
    true,
    'bare "web" with the search list',
  )
  const getent = c.execCtr('client', ['getent', 'ahostsv4', 'web']).stdout
  t.ok(getent.includes(web1) && getent.includes(web2), `getent: ${getent}`)
  const hello = c.execCtr('client', [
    'sh',
    '-c',
    'printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc -w 3 web 80',
  ])
  t.match(hello.stdout, /hello from web[12]/, 'connects to the service by name')
  t.equal(
    digShort('SRV', '_http._tcp.web.svc.plexus.internal'),
    '0 10 80 web1.ctr.plexus.internal. 0 10 80 web2.ctr.plexus.internal.',
  )
  t.equal(digShort('example.test'), '203.0.113.7', 'forwarded to the stub upstream')
  t.equal(digShort('-x', web2), 'web2.ctr.plexus.internal.')

  // each host's DNS answer read through its API socket (what `plexctl dns query` calls): three plexctl
  // start-ups per poll took seconds on a loaded machine, and that time was counted against the bound
  const answersOn = async (h: string) =>
    (
      await hostApi<{ answers: { data: string }[] }>(
        c,
        h,
        'GET',
        '/v1/dns/query?name=web.svc.plexus.internal&type=A',
      ).catch(() => ({ answers: [] }))
    ).answers
      .map((a) => a.data)
      .sort()
      .join(' ')
  const allAnswer = async (want: string) =>
    (await Promise.all(['h1', 'h2', 'h3'].map(answersOn))).every((a) => a === want)

  // fail web1's health check: stop exactly the web server the test started
  process.kill(Number(readFileSync(join(www, 'web1.pid'), 'utf8')), 'SIGTERM')
  const stopped = Date.now()
  // the bound: TTL + check interval (one failure marks it; +1 interval for the check in flight)
  const budgetMs = (TTL_S + INTERVAL_S * (FAILURES + 1)) * 1000
  const gone = await eventually(() => allAnswer(web2), budgetMs, 100)
  t.ok(
    gone,
    `unhealthy web1 left the answers on every host within ${budgetMs} ms (took ${Date.now() - stopped} ms)`,
  )
  t.equal(digShort('web.svc.plexus.internal'), web2, 'the client sees it too')
  const svc = c.plexctlJson<{ name: string; healthy: number; total: number }[]>('h2', ['services'])
  t.match(
    svc.find((s) => s.name === 'web'),
    { name: 'web', healthy: 1, total: 2 },
    'plexctl services',
  )

  // back to healthy: a new server in the same container namespace
  const again = c.execCtr('web1', ['sh', '-c', `busybox httpd -p 80 -h ${www}/web1 && echo started`])
  t.equal(again.status, 0, again.stderr)
  t.ok(await eventually(() => allAnswer(both), budgetMs, 100), 'healthy again: back in answers')
})
