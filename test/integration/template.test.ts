// plexctl template (issue 14 item 5) on a one-host fixture: a reverse-proxy
// upstream block from the healthy members of a service and KV values. The
// service scaled 1 → 3 → 1 re-renders once per change and the reload runs
// exactly once each time; 100 KV writes in a burst give at most 5 renders; a
// reader looping on the file never sees it half-written; the mode is kept; a
// missing key fails naming it (with --once, and when deleted under a running
// template); and --once from inside a container, through PLEXUS_HTTP_ADDR.
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import t from 'tap'
import { DEFAULT_APP_PORT } from '../../src/api/app-listener.js'
import { CLUSTER, eventually, PLEXCTL, upCluster } from '../helpers/fixture.js'
import { kvBurst } from '../helpers/kv-burst.js'

t.setTimeout(300_000)

// a block tag alone on its line leaves no line behind (Handlebars' standalone rule)
const TEMPLATE = `# generation {{key "config/web/gen"}}
upstream web {
{{#each (service "web")}}
  server {{address}}:{{port}};
{{/each}}
}
# burst {{#each (tree "config/burst/")}}{{name}} {{/each}}
`
/** what every complete rendering of TEMPLATE looks like */
const WHOLE = /^# generation \d+\nupstream web \{\n( {2}server [\d.]+:80;\n)*\}\n# burst (\d+ )*\n$/

t.test('a template follows a service and KV, reloads once per change, never shows half a file', async (t) => {
  const started = Date.now()
  const lap = (what: string) => t.comment(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`)
  const c = upCluster(t, { hosts: 1, prefix: 'tp' })
  lap('cluster up')
  const dir = mkdtempSync(join(tmpdir(), `${c.name}-tpl-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [source, dest, reloads] = ['web.tpl', 'web.conf', 'reloads'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
  ]
  writeFileSync(source, TEMPLATE)
  const ok = (args: string[]) =>
    t.equal(c.exec('h1', ['plexctl', ...args]).status, 0, `plexctl ${args.join(' ')}`)
  ok(['service', 'register', 'web', '--port', '80'])
  ok(['kv', 'put', 'config/web/gen', '1'])
  t.equal(c.run('h1', 'web1', ['sleep', '600'], ['--service', 'web']).status, 0)

  // --once with a key that does not exist: an error naming it, no file
  const missing = join(dir, 'missing.tpl')
  writeFileSync(missing, 'port {{key "config/web/absent"}}\n')
  const once = c.exec('h1', [
    'plexctl',
    'template',
    '--once',
    '--source',
    missing,
    '--dest',
    join(dir, 'm.conf'),
  ])
  t.equal(once.status, 1, 'exit 1')
  t.match(once.stderr, /key "config\/web\/absent" does not exist.*PLX_TEMPLATE_MISSING_KEY/, once.stderr)
  t.notOk(existsSync(join(dir, 'm.conf')), 'nothing written instead of an empty value')

  // inside a container the agent is its application API at PLEXUS_HTTP_ADDR (no socket there)
  const gateway = /default via (\S+)/.exec(
    c.execCtr('web1', ['ip', '-4', 'route', 'show', 'default']).stdout,
  )?.[1]
  const inside = c.execCtr('web1', [
    ...['env', `PLEXUS_HTTP_ADDR=${gateway}:${DEFAULT_APP_PORT}`, 'PLEXUS_SOCKET=/nonexistent'],
    ...[PLEXCTL, 'template', '--once', '--source', source, '--dest', join(dir, 'inside.conf')],
  ])
  t.equal(inside.status, 0, `from a container through ${gateway}: ${inside.stderr}`)
  t.match(
    readFileSync(join(dir, 'inside.conf'), 'utf8'),
    /^# generation 1\nupstream web \{\n {2}server [\d.]+:80;\n\}/,
  )

  let reading = true
  const tpl = spawn(
    CLUSTER,
    [
      ...['exec', '--name', c.name, '--host', 'h1', '--'],
      ...['plexctl', 'template', '--source', source, '--dest', dest, '--exec', `echo reload >> ${reloads}`],
    ],
    { stdio: ['ignore', 'inherit', 'pipe'] },
  )
  let log = ''
  t.teardown(() => {
    reading = false
    tpl.kill()
    t.comment(log)
  })
  tpl.stderr.on('data', (d: Buffer) => (log += d))
  const exited = new Promise<number | null>((resolve) => tpl.once('exit', resolve))
  const count = (re: RegExp) => (log.match(re) ?? []).length
  const reloaded = () => (existsSync(reloads) ? readFileSync(reloads, 'utf8').split('\n').length - 1 : 0)
  const servers = () =>
    existsSync(dest) ? (readFileSync(dest, 'utf8').match(/ {2}server /g) ?? []).length : -1

  // a reader looping on the file for the whole test: every read is a whole rendering
  let reads = 0
  const torn: string[] = []
  const reader = (async () => {
    while (reading) {
      try {
        const text = readFileSync(dest, 'utf8')
        reads++
        if (!WHOLE.test(text)) torn.push(text)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
      await tick()
    }
  })()

  /** waits until `done`, then a while longer, so a change that would come late is counted too */
  const settle = async (what: string, done: () => boolean) => {
    t.ok(await eventually(done, 20_000, 50), what)
    await new Promise((r) => setTimeout(r, 1500))
    lap(what)
  }
  await settle('first render', () => servers() === 1 && reloaded() === 1)
  t.equal(count(/rendered .* \(changed\)/g), 1)
  chmodSync(dest, 0o640)

  // scaled 1 → 3 → 1, one endpoint at a time: one reload per effective change, none otherwise
  const step = async (what: string, act: () => void, want: number, reloadsBefore: number) => {
    act()
    await settle(what, () => servers() === want)
    t.equal(reloaded(), reloadsBefore + 1, `${what}: the reload ran exactly once`)
    t.equal(count(/rendered .* \(changed\)/g), reloadsBefore + 1, `${what}: written once`)
  }
  const run = (ctr: string) => () =>
    t.equal(c.run('h1', ctr, ['sleep', '600'], ['--service', 'web']).status, 0)
  const rm = (ctr: string) => () => t.equal(c.rm(ctr).status, 0)
  await step('web2 joined', run('web2'), 2, 1)
  await step('web3 joined', run('web3'), 3, 2)
  t.equal(statSync(dest).mode & 0o777, 0o640, 'the mode is kept across rewrites')
  await step('web3 left', rm('web3'), 2, 3)
  await step('web2 left', rm('web2'), 1, 4)

  // 100 KV writes in a burst: a handful of renders, the last one complete
  const state = JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as {
    hosts: { name: string; socket: string }[]
  }
  const rendersBefore = count(/rendered /g)
  const burst = await kvBurst(state.hosts[0]?.socket as string, {
    count: 100,
    concurrency: 4,
    prefix: 'config/burst',
  })
  t.equal(burst.acknowledged.length, 100, `100 writes in ${burst.ms} ms`)
  await settle('burst rendered', () => /# burst (\d+ ){100}\n$/.test(readFileSync(dest, 'utf8')))
  const renders = count(/rendered /g) - rendersBefore
  t.ok(renders >= 1 && renders <= 5, `100 writes in ${burst.ms} ms: ${renders} renders`)
  t.equal(
    reloaded(),
    count(/rendered .* \(changed\)/g),
    'a reload per changed write, none for an unchanged one',
  )

  reading = false
  await reader
  t.ok(reads > 100, `the reader read the file ${reads} times`)
  t.same(torn, [], 'and never saw it half-written')

  // the key deleted under the running template: it stops, naming the key, and leaves the last file
  const last = readFileSync(dest, 'utf8')
  ok(['kv', 'rm', 'config/web/gen'])
  t.equal(await exited, 1, 'plexctl template exits 1')
  t.match(log, /key "config\/web\/gen" does not exist/, 'naming the key')
  t.equal(readFileSync(dest, 'utf8'), last, 'the last good file stays')
  lap('done')
})
