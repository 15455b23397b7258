// ConnectionGate: a response that ends after its client went away (an SSE
// stream or a blocking read whose reader hung up) must not arm a deadline
// for the closed socket: it held the process for the whole deadline and
// counted a timeout that never happened.
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConnectionGate, type GateEvent } from '../../../src/lib/conn-gate.js'

t.test('no deadline is armed for a socket that already closed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plx-gate-'))
  const path = join(dir, 's.sock')
  const events: GateEvent[] = []
  const gate = new ConnectionGate({ maxConnections: 4, maxPerClient: 4, messageMs: 100 }, (e) =>
    events.push(e),
  )
  const server = createServer()
  t.teardown(async () => {
    await new Promise<void>((r) => server.close(() => r()))
    await rm(dir, { recursive: true, force: true })
  })
  const admitted = new Promise<{ sock: Socket; d: NonNullable<ReturnType<ConnectionGate['admit']>> }>(
    (resolve) =>
      server.on('connection', (sock) => {
        const d = gate.admit(sock, 'c')
        if (d) resolve({ sock, d })
      }),
  )
  await new Promise<void>((r) => server.listen(path, () => r()))
  const client = connect(path)
  const { sock, d } = await admitted
  d.received()
  client.destroy()
  await new Promise((r) => sock.once('close', r))
  d.answered()
  await new Promise((r) => setTimeout(r, 300))
  t.same(events, ['accepted'], 'no timedOut for the closed socket')
  t.equal(gate.size, 0)
})
