// WarmTools: a tool process started ahead takes the next batch; without one
// (none prepared, or it died) the batch starts its own, as run() does.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { type Tool, WarmTools } from '../../../src/datapath/firewall/exec.js'

/** prints its pid, then its input: which process ran the batch, and what it was given */
const TOOL: Tool = ['sh', ['-c', 'echo $$; cat']]

const run = (tools: WarmTools, input: string) =>
  tools.run(...TOOL, input).then((out) => {
    const [pid, line] = out.split('\n')
    return { pid: Number(pid), line }
  })

/** this process's children running TOOL (pgrep lists none as exit status 1) */
function waiting(): number[] {
  try {
    const out = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'echo ..; cat'], { encoding: 'utf8' })
    return out.trim().split('\n').map(Number)
  } catch {
    return []
  }
}

async function until(what: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 20))
  return what()
}

t.test(
  'a prepared process runs the next batch; the one after starts its own unless prepared again',
  async (t) => {
    const tools = new WarmTools()
    tools.prepare([TOOL])
    tools.prepare([TOOL])
    t.ok(await until(() => waiting().length === 1), 'one process waits, however often prepare() is called')
    const [ahead] = waiting()
    const first = await run(tools, 'rules 1\n')
    t.same(first, { pid: ahead, line: 'rules 1' }, 'the batch went to the waiting process')
    t.same(waiting(), [], 'none waits after it')

    const second = await run(tools, 'rules 2\n')
    t.not(second.pid, ahead, 'none prepared: the batch started its own process')
    t.equal(second.line, 'rules 2')
  },
)

t.test('a prepared process that died is not used: the batch starts its own', async (t) => {
  const tools = new WarmTools()
  tools.prepare([TOOL])
  t.ok(await until(() => waiting().length === 1))
  const [dead] = waiting()
  process.kill(dead as number, 'SIGKILL')
  t.ok(await until(() => waiting().length === 0), 'killed')
  await new Promise((r) => setTimeout(r, 50))
  const r = await run(tools, 'rules\n')
  t.not(r.pid, dead)
  t.equal(r.line, 'rules', 'the batch ran')
})

t.test('release() ends the waiting processes with an empty batch', async (t) => {
  const tools = new WarmTools()
  tools.prepare([TOOL])
  t.ok(await until(() => waiting().length === 1))
  tools.release()
  t.ok(await until(() => waiting().length === 0), 'it exited')
})
