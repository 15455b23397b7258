// The application API from inside a container (issue 14, items 1-2), on one
// fixture host: the container finds the agent as agent.plexus.internal, reads
// and writes KV through its gateway, watches a prefix over SSE, registers
// itself (seen in DNS and in ?passing health), renews its TTL; the host's own
// address, which is no container endpoint, is refused with 403. Requests are
// batched into few processes: each spawn costs a node start-up.
import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DEFAULT_APP_PORT } from '../../src/api/app-listener.js'
import { CLUSTER, eventually, REPO, upCluster } from '../helpers/fixture.js'

t.setTimeout(600_000)

const CALL = join(REPO, 'dist/test/helpers/http-call.js')
/** a reply's status and parsed body (the fields the checks read) */
type Reply = {
  status: number
  body: { error?: string; message?: string; expiresAt?: string; name?: string; ipv4?: string }
}

t.test('a container uses its agent through the gateway', async (t) => {
  const started = Date.now()
  const lap = (what: string) => t.comment(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`)
  // a low request rate per address, so the flood below passes it on any machine
  const c = upCluster(t, { hosts: 1, prefix: 'ap', agentConfig: { api: { appRequestsPerSecond: 20 } } })
  lap('cluster up')
  t.equal(c.run('h1', 'app', ['sleep', '600']).status, 0)
  /** requests from the container (or, ctr undefined, from the host's namespace) in one process */
  const calls = (
    ctr: string | undefined,
    list: { method: string; url: string; body?: unknown }[],
  ): Reply[] => {
    const cmd = [process.execPath, CALL, 'CALLS', JSON.stringify(list)]
    const r = ctr ? c.execCtr(ctr, cmd) : c.exec('h1', cmd)
    return r.status === 0 ? JSON.parse(r.stdout) : list.map(() => ({ status: -1, body: { error: r.stderr } }))
  }

  const probe = c.execCtr('app', [
    'sh',
    '-c',
    'ip -4 route show default; dig +short +time=2 +tries=2 agent.plexus.internal',
  ]).stdout
  const gateway = /default via (\S+)/.exec(probe)?.[1]
  t.ok(gateway, `container's gateway ${gateway}`)
  t.equal(probe.trim().split('\n').pop(), gateway, "agent.plexus.internal is the asking container's gateway")
  const base = `http://${gateway}:${DEFAULT_APP_PORT}`

  const first = await eventually(
    () => {
      const r = calls('app', [
        { method: 'GET', url: `${base}/v1/agent/self` },
        { method: 'PUT', url: `${base}/v1/kv/config/app/greeting`, body: 'hello' },
      ])
      return r[0]?.status === 200 ? r : undefined
    },
    20_000,
    250,
  )
  t.ok(first, 'the listener answers once the bridge has its address')
  const [self, put] = first as Reply[]
  const me = self?.body as { name: string; ipv4: string }
  t.equal(me.name, 'app', 'the caller is known by its address')
  t.equal(put?.status, 200, 'KV write')
  const wget = c.execCtr('app', ['busybox', 'wget', '-q', '-O', '-', `${base}/v1/kv/config/app/greeting`])
  t.equal(JSON.parse(wget.stdout || '{}').value, 'hello', 'busybox wget reads back what the container wrote')
  t.equal(
    c.plexctlJson<{ value: unknown }>('h1', ['kv', 'get', 'config/app/greeting']).value,
    'hello',
    'the record the operator API sees',
  )
  lap('KV checked')

  // SSE: a watcher in the container sees a change made by the operator
  const watcher = spawn(
    CLUSTER,
    [
      'exec',
      '--name',
      c.name,
      '--ctr',
      'app',
      '--',
      process.execPath,
      CALL,
      'WATCH',
      `${base}/v1/watch/config/app/`,
      'config/app/new',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  t.teardown(() => watcher.kill())
  let out = ''
  watcher.stdout.on('data', (d: Buffer) => (out += d))
  const done = new Promise<number | null>((resolve) => watcher.once('exit', resolve))
  t.ok(await eventually(() => out.includes('synced'), 30_000, 100), 'the watch caught up')
  t.equal(c.exec('h1', ['plexctl', 'kv', 'put', 'config/app/new', '"v"']).status, 0)
  t.equal(await done, 0, 'the watcher got the put and exited')
  t.match(out, /status 200\nput config\/app\/greeting\nsynced \nput config\/app\/new/, out)
  lap('SSE checked')

  // self-registration, seen in DNS and in health; operator routes absent
  const [reg, pass, health, stranger, jobs] = calls('app', [
    {
      method: 'PUT',
      url: `${base}/v1/agent/service`,
      body: { service: 'api', tags: ['v1'], ttlSeconds: 30 },
    },
    { method: 'PUT', url: `${base}/v1/agent/service/api/pass` },
    { method: 'GET', url: `${base}/v1/health/service/api?passing&tag=v1&near=_agent` },
    { method: 'PUT', url: `${base}/v1/agent/service/other/pass` },
    { method: 'GET', url: `${base}/v1/jobs` },
  ]) as Reply[]
  t.equal(reg?.status, 200, JSON.stringify(reg?.body))
  t.ok(reg?.body.expiresAt, 'a TTL registration')
  t.equal(pass?.status, 200, 'pass renews the TTL')
  t.same(
    ((health?.body ?? []) as unknown as { ipv4: string }[]).map((m) => m.ipv4),
    [me.ipv4],
    'passing, tagged, near',
  )
  t.equal(stranger?.status, 404, 'no registration in a service it never joined')
  t.equal(jobs?.status, 404, 'operator routes do not exist on the application API')
  const inDns = await eventually(
    () =>
      c.execCtr('app', ['dig', '+short', '+time=2', '+tries=1', 'api.svc.plexus.internal']).stdout.trim() ===
      me.ipv4,
    15_000,
    250,
  )
  t.ok(inDns, 'api.svc.plexus.internal answers the container')

  // who is calling: the host's own process is no endpoint of this host
  const [host] = calls(undefined, [{ method: 'GET', url: `${base}/v1/kv/config/app/greeting` }]) as Reply[]
  t.equal(host?.status, 403, 'an address that is not a container endpoint is refused')
  t.equal(host?.body.error, 'PLX_API_UNKNOWN_CALLER')

  // ACLs (issue 14 item 3). The agents' keys are never a container's to write, even under `allow`
  const [network, lease] = calls('app', [
    { method: 'PUT', url: `${base}/v1/kv/config/network`, body: { Network: '10.0.0.0/8' } },
    { method: 'DELETE', url: `${base}/v1/kv/leases/${me.name}` },
  ]) as Reply[]
  t.equal(network?.status, 403, 'a container cannot rewrite the cluster network')
  t.match(network?.body, {
    error: 'PLX_ACL_DENIED',
    message: /built-in: "config\/network" is the agents' own/,
  })
  t.equal(lease?.status, 403, 'nor delete a lease')
  // deny by default: a container reads its own service's config and config/shared/, writes nothing else
  t.equal(c.run('h1', 'web1', ['sleep', '600'], ['--service', 'web']).status, 0)
  for (const [k, v] of [
    ['config/shared/motd', '"hi"'],
    ['config/web/port', '8080'],
    ['config/db/password', '"s3cret"'],
  ])
    t.equal(c.exec('h1', ['plexctl', 'kv', 'put', k as string, v as string]).status, 0)
  t.equal(c.exec('h1', ['plexctl', 'acl', 'default', 'deny']).status, 0, 'plexctl acl default deny')
  const [ownRead, ownWrite, sharedRead, otherWrite, listing, watchDb, discover] = calls('web1', [
    { method: 'GET', url: `${base}/v1/kv/config/web/port` },
    { method: 'PUT', url: `${base}/v1/kv/config/web/port`, body: 9090 },
    { method: 'GET', url: `${base}/v1/kv/config/shared/motd` },
    { method: 'PUT', url: `${base}/v1/kv/config/api/port`, body: 1 },
    { method: 'GET', url: `${base}/v1/kv/config/?keys` },
    { method: 'GET', url: `${base}/v1/watch/config/db/` },
    { method: 'GET', url: `${base}/v1/health/service/api` },
  ]) as Reply[]
  t.equal(ownRead?.status, 200, 'reads config/<own service>/')
  t.match(
    ownWrite,
    { status: 403, body: { message: /denied by built-in kv "config\/web\/" read/ } },
    'but not write it',
  )
  t.equal(sharedRead?.status, 200, 'reads config/shared/')
  t.match(
    otherWrite,
    { status: 403, body: { message: /denied by default policy deny/ } },
    'writes nothing else',
  )
  t.same(listing?.body, ['config/shared/motd', 'config/web/port'], 'a listing shows only what it may read')
  t.equal(watchDb?.status, 403, 'a watch of a prefix it may not read is refused')
  t.equal(discover?.status, 403, 'discovery needs a rule under deny')
  // a policy bound to the service grants more, and the 403 names the policy's rule where it denies
  const policy = join(tmpdir(), `${c.name}-web-writers.yaml`)
  t.teardown(() => rmSync(policy, { force: true }))
  writeFileSync(
    policy,
    'name: web-writers\nservices: [web]\nrules:\n  - { kv: config/web/, access: write }\n  - { kv: config/web/tls/, access: deny }\n  - { service: "*", access: discover }\n',
  )
  t.equal(c.exec('h1', ['plexctl', 'acl', 'policy', 'put', policy]).status, 0, 'plexctl acl policy put')
  const [granted, tls, found, stillApp] = [
    ...(calls('web1', [
      { method: 'PUT', url: `${base}/v1/kv/config/web/port`, body: 9090 },
      { method: 'PUT', url: `${base}/v1/kv/config/web/tls/key`, body: 'k' },
      { method: 'GET', url: `${base}/v1/health/service/api` },
    ]) as Reply[]),
    ...(calls('app', [{ method: 'PUT', url: `${base}/v1/kv/config/web/port`, body: 1 }]) as Reply[]),
  ]
  t.equal(granted?.status, 200, 'the policy lets web write config/web/')
  t.match(tls?.body.message, /denied by policy "web-writers" kv "config\/web\/tls\/" deny/)
  t.equal(found?.status, 200, 'and discover services')
  t.equal(stillApp?.status, 403, 'a container of no service is still refused')
  t.equal(c.plexctlJson<{ value: unknown }>('h1', ['kv', 'get', 'config/web/port']).value, 9090)

  // a flood from one container is refused per address (429); the others are still served
  const flood = calls(
    'web1',
    Array.from({ length: 200 }, () => ({ method: 'GET', url: `${base}/v1/agent/self` })),
  )
  const limited = flood.filter((r) => r.status === 429)
  t.ok(limited.length > 0, `${limited.length} of 200 requests in a burst refused`)
  t.equal(limited[0]?.body.error, 'PLX_API_RATE_LIMITED')
  t.ok(
    flood.every((r) => r.status === 200 || r.status === 429),
    'the rest answered',
  )
  const [other] = calls('app', [{ method: 'GET', url: `${base}/v1/agent/self` }]) as Reply[]
  t.equal(other?.status, 200, 'another container is served meanwhile')
  lap('wall time')
})
