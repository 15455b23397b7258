// A task's `templates` block on a real agent (1 host in the netns test bed):
// a task whose template reads a key that does not exist yet waits, naming the
// key, and starts once it is written; a changed value re-renders the file and
// applies the template's changeMode once (a SIGHUP the task counts; a restart,
// not counted against the restart policy); a burst of 100 writes within a
// second gives a handful of renders, and an unchanged value none.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { type Cluster, eventually, upCluster } from '../../helpers/fixture.js'
import { type Alloc, hostApi, hostDir, localAlloc } from '../../helpers/runner.js'

const SPEC = `name: tpl
type: service
groups:
  - name: hup
    count: 1
    tasks:
      - name: app
        driver: exec
        # counts each SIGHUP in its directory; the sleeps are short so the trap runs at once
        config: { command: ["sh", "-c", "trap 'echo hup >> $PLEXUS_TASK_DIR/hups' HUP; while :; do sleep 0.1; done"] }
        resources: { cpu: 50, memoryMb: 16 }
        killTimeoutMs: 1000
        templates:
          - data: "greeting={{key \\"config/tpl/greeting\\"}}\\n"
            dest: conf/app.conf
            changeMode: signal
            signal: SIGHUP
  - name: late
    count: 1
    tasks:
      - name: app
        driver: exec
        config: { command: ["sleep", "600"] }
        resources: { cpu: 50, memoryMb: 16 }
        killTimeoutMs: 1000
        templates:
          - data: "{{key \\"config/tpl/late\\"}}"
            dest: late.txt
`

/** PUT /v1/kv/<key> on h1's API socket: 200, or the error (hostApi: milliseconds, where plexctl is hundreds) */
const put = (c: Cluster, key: string, value: string): Promise<number | string> =>
  hostApi(c, 'h1', 'PUT', `/v1/kv/${key}`, value).then(
    () => 200,
    (err: unknown) => String(err),
  )

t.test('task templates: rendered from the store, waiting for keys, re-rendered on change', async (t) => {
  const c = upCluster(t, { hosts: 1, prefix: 'tpl' })
  const file = join(tmpdir(), `${c.name}-tpl.yaml`)
  writeFileSync(file, SPEC)
  t.teardown(() => rmSync(file, { force: true }))
  t.equal(await put(c, 'config/tpl/greeting', 'hello'), 200, 'greeting written')
  const run = c.exec('h1', ['plexctl', 'job', 'run', file])
  t.equal(run.status, 0, `job run: ${run.stderr}`)
  const allocs = () => c.plexctlJson<Alloc[]>('h1', ['allocs', '--job', 'tpl'])
  const of = (group: string) => allocs().find((a) => a.group === group)
  const taskDir = (a: Alloc) => join(hostDir(c, 'h1'), 'state/runner', a.id, 'app', 'local')

  const hup = await eventually(() => {
    const a = of('hup')
    return a?.status === 'running' ? a : undefined
  }, 60_000)
  t.ok(hup, 'the task with its key runs')
  if (!hup) return
  const conf = join(taskDir(hup), 'conf/app.conf')
  t.equal(readFileSync(conf, 'utf8'), 'greeting=hello\n', 'its file is rendered before it starts')

  // the other task's key does not exist: it waits, saying which key, and no empty file is made
  const late = await eventually(() => {
    const a = of('late')
    return a && /config\/tpl\/late/.test(JSON.stringify(a)) ? a : undefined
  }, 30_000)
  t.ok(late, `a missing key holds the task back and is named: ${JSON.stringify(of('late'))}`)
  if (!late) return
  t.not(late.status, 'running', 'it is not running')
  t.notOk(existsSync(join(taskDir(late), 'late.txt')), 'no file rendered without its key')
  t.equal(await put(c, 'config/tpl/late', 'v1'), 200)
  t.ok(
    await eventually(() => of('late')?.status === 'running', 30_000),
    'written, the key lets the task start',
  )
  t.equal(readFileSync(join(taskDir(late), 'late.txt'), 'utf8'), 'v1')
  const latePid = () => localAlloc(c, 'h1', late.id).tasks[0]?.handle?.pid
  const firstPid = latePid()
  t.ok(firstPid, 'its process')

  // a change: the file follows, and its changeMode (restart) gives a new process, not a failure
  t.equal(await put(c, 'config/tpl/late', 'v2'), 200)
  t.ok(
    await eventually(() => readFileSync(join(taskDir(late), 'late.txt'), 'utf8') === 'v2', 10_000),
    'the file re-rendered',
  )
  t.ok(
    await eventually(() => {
      const pid = latePid()
      return pid !== undefined && pid !== firstPid && of('late')?.status === 'running'
    }, 15_000),
    'restarted by the change',
  )
  t.equal(of('late')?.restarts, 0, 'a template restart is not a failure')

  // changeMode signal: one SIGHUP per effective change
  const hups = () => {
    const p = join(taskDir(hup), 'hups')
    return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0
  }
  t.equal(await put(c, 'config/tpl/greeting', 'hello2'), 200)
  t.ok(
    await eventually(() => readFileSync(conf, 'utf8') === 'greeting=hello2\n', 10_000),
    'signal mode: the file re-rendered',
  )
  t.ok(await eventually(() => hups() === 1, 5000), 'and the task got one SIGHUP')
  t.equal(await put(c, 'config/tpl/greeting', 'hello2'), 200, 'the same value again')
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(hups(), 1, 'an unchanged render sends nothing')

  // a burst: 100 values within a second, renders debounced
  const started = Date.now()
  for (let i = 0; i < 100; i++) {
    await put(c, 'config/tpl/greeting', `burst${i}`)
    const behind = started + (i + 1) * 9 - Date.now()
    if (behind > 0) await new Promise((r) => setTimeout(r, behind))
  }
  const burstMs = Date.now() - started
  t.ok(
    await eventually(() => readFileSync(conf, 'utf8') === 'greeting=burst99\n', 10_000),
    'the last value is rendered',
  )
  await new Promise((r) => setTimeout(r, 1000))
  const renders = hups() - 1
  // at most 5 a second (issue 14); a loaded machine may take longer than a second to write them
  const most = 5 * Math.ceil(burstMs / 1000)
  t.ok(renders >= 1 && renders <= most, `100 writes in ${burstMs} ms: ${renders} renders (at most ${most})`)
  t.equal(of('hup')?.restarts, 0, 'the signalled task was never restarted')

  t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'tpl']).status, 0, 'job stop')
  t.ok(
    await eventually(() => !existsSync(join(hostDir(c, 'h1'), 'state/runner', hup.id)), 30_000),
    'the task directory, templates included, goes with its allocation',
  )
})
