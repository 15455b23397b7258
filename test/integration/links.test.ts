import { readFileSync } from 'node:fs'
import t from 'tap'
import { eventually, upCluster } from '../helpers/fixture.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

interface Ls {
  containers: { name: string; pid: number | null; addresses: string[] }[]
}

function processEnv(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  )
}

t.test('links: env vars, hosts entry, and the entry follows the target to another host', async (t) => {
  const c = upCluster(t, { hosts: 2 })
  const db = c.run('h1', 'db1', ['sleep', '600'], ['--service', 'db', '--expose', '5432'])
  t.equal(db.status, 0, db.stderr)
  const dbIp = db.stdout.match(/(\d+\.\d+\.\d+\.\d+)\//)?.[1]
  t.ok(dbIp, 'db got an address')

  const app = c.run('h2', 'app', ['sleep', '600'], ['--link', 'db'])
  t.equal(app.status, 0, app.stderr)
  const ls = JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as Ls
  const pid = ls.containers.find((x) => x.name === 'app')?.pid
  t.ok(pid, 'app runs')
  const env = processEnv(pid as number)
  t.equal(env.DB_NAME, '/app/db')
  t.equal(env.DB_PORT, `tcp://${dbIp}:5432`)
  t.equal(env.DB_PORT_5432_TCP_ADDR, dbIp)
  t.equal(env.DB_PORT_5432_TCP_PORT, '5432')
  t.equal(env.DB_PORT_5432_TCP_PROTO, 'tcp')
  const appIp = app.stdout.match(/(\d+\.\d+\.\d+)\.\d+\//)?.[1]
  t.equal(env.PLEXUS_HTTP_ADDR, `${appIp}.1:7374`, "a linked container is told where its agent's API is")

  const hosts = () => c.execCtr('app', ['cat', '/etc/hosts']).stdout
  t.match(hosts(), new RegExp(`^${dbIp}\\tdb db1$`, 'm'), 'hosts entry <ip> <alias> <target name>')
  const plexctlEnv = c.exec('h2', ['plexctl', 'link', 'env', 'app', '--to', 'db'])
  t.match(plexctlEnv.stdout, `DB_PORT_5432_TCP_ADDR=${dbIp}\n`)

  // Move db to h2: the entry inside the running container follows.
  t.equal(c.rm('db1').status, 0)
  const moved = c.run('h2', 'db1', ['sleep', '600'], ['--service', 'db', '--expose', '5432'])
  t.equal(moved.status, 0, moved.stderr)
  const newIp = moved.stdout.match(/(\d+\.\d+\.\d+\.\d+)\//)?.[1]
  t.not(newIp, dbIp, 'db moved to a new address')
  const followed = await eventually(() => new RegExp(`^${newIp}\\tdb db1$`, 'm').test(hosts()), 10_000)
  t.ok(followed, `hosts entry follows db to ${newIp}`)

  const bad = c.exec('h2', ['plexctl', 'link', 'env', 'app', '--to', 'nosuch'])
  t.equal(bad.status, 1)
  t.match(bad.stderr, /no container or healthy service endpoint named "nosuch"/)
  const malformed = c.exec('h2', ['plexctl', 'link', 'env', 'app', '--to', 'a:b:c'])
  t.equal(malformed.status, 1)
  t.match(malformed.stderr, /PLX_LINK_BAD_SPEC/)
})
