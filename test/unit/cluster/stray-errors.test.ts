import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { isStrayStreamError } from '../../../src/cluster/stray-errors.js'

// The trace from issue 22 (an agent killed by @libp2p/pnet's wasm cipher), as Node printed it.
const ISSUE_STACK = `RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded
    at WASM.realloc (/opt/plexus/node_modules/xsalsa20/index.js:54:19)
    at XSalsa20.update (/opt/plexus/node_modules/xsalsa20/index.js:26:31)
    at BoxMessageStream.sendData (/opt/plexus/node_modules/@libp2p/pnet/dist/src/crypto.js:55:60)
    at TCPSocketMultiaddrConnection.wrapper (file:///opt/plexus/node_modules/main-event/dist/src/index.js:139:17)
    at [nodejs.internal.kHybridDispatch] (node:internal/event_target:831:20)
    at TCPSocketMultiaddrConnection.dispatchEvent (node:internal/event_target:766:26)`

function withStack(stack: string): Error {
  const err = new Error('x')
  err.stack = stack
  return err
}

t.test('which uncaught errors are a connection’s own', async (t) => {
  t.ok(isStrayStreamError(withStack(ISSUE_STACK)), 'thrown by libp2p stream code in a listener')
  const ours = ISSUE_STACK.replace(
    /\/opt\/plexus\/node_modules\/xsalsa20\/index\.js/g,
    '/opt/plexus/dist/src/store/store.js',
  )
  t.notOk(isStrayStreamError(withStack(ours)), 'thrown by our own code: not contained')
  const ownListener = ISSUE_STACK.replace(
    /\/opt\/plexus\/node_modules\/[^)]*/g,
    '/opt/plexus/dist/src/x.js:1:1',
  )
  t.notOk(isStrayStreamError(withStack(ownListener)), 'no libp2p stream code on the stack: not contained')
  const noDispatch = ISSUE_STACK.split('\n').slice(0, 4).join('\n')
  t.notOk(isStrayStreamError(withStack(noDispatch)), 'not inside an event dispatch: not contained')
  t.notOk(isStrayStreamError('a string'), 'not an Error')
  // seen in the bundled agent (session 16): no frame names a package, none is an event dispatch
  const bundled = withStack(`StreamStateError: Cannot write to a stream that is closed
    at EncryptedMessageStream.send (file:///opt/plexus/dist/src/agent/main.js:795:68711)
    at YamuxStream.sendWindowUpdate (file:///opt/plexus/dist/src/agent/main.js:809:407011)
    at node:internal/process/task_queues:140:7
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)`)
  bundled.name = 'StreamStateError'
  t.ok(isStrayStreamError(bundled), "libp2p's stream-state error from a microtask in the bundle: contained")
  const renamed = withStack(bundled.stack ?? '')
  t.notOk(isStrayStreamError(renamed), 'the same frames as a plain Error: not contained')
})

// A child process stands in for the agent: a stray error is survived, any other ends it.
const child = `
import { guardStrayStreamErrors } from ${JSON.stringify(fileURLToPath(new URL('../../../src/cluster/stray-errors.js', import.meta.url)))}
guardStrayStreamErrors(process, () => console.log('stray'), () => { console.log('fatal'); process.exit(1) })
const target = new EventTarget()
target.addEventListener('message', () => {
  const err = new Error(process.argv.at(-1))
  err.stack = process.argv.at(-1) === 'stray' ? ${JSON.stringify(ISSUE_STACK)} : 'Error: ours\\n    at Store.put (/opt/plexus/dist/src/store/store.js:1:1)'
  throw err
})
target.dispatchEvent(new Event('message'))
setTimeout(() => console.log('still running'), 50)
`

t.test('the guard keeps the process running only for stray stream errors', async (t) => {
  const run = (kind: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', child, kind], {
      encoding: 'utf8',
      timeout: 10_000,
    })
  const stray = run('stray')
  t.equal(stray.status, 0, stray.stderr)
  t.same(stray.stdout.trim().split('\n'), ['stray', 'still running'])
  const other = run('other')
  t.equal(other.status, 1)
  t.same(other.stdout.trim().split('\n'), ['fatal'])
})
