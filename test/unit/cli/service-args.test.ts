import t from 'tap'
import { parseCheck, parsePort } from '../../../src/cli/commands/service.js'

t.test('--port specs', async (t) => {
  t.same(parsePort('http:80/tcp'), { port: 80, protocol: 'tcp', name: 'http' })
  t.same(parsePort('53/udp'), { port: 53, protocol: 'udp' })
  t.same(parsePort('8080'), { port: 8080, protocol: 'tcp' })
  t.throws(() => parsePort('http:/tcp'))
  t.throws(() => parsePort('80/sctp'))
})

t.test('--check specs', async (t) => {
  const common = { interval: 2000, timeout: 500, failures: 2 }
  t.same(parseCheck('tcp:80', {}), { name: 'tcp', type: 'tcp', port: 80 })
  t.same(parseCheck('http:http/healthz=204', common), {
    name: 'http',
    type: 'http',
    port: 'http',
    path: '/healthz',
    status: 204,
    intervalMs: 2000,
    timeoutMs: 500,
    failures: 2,
  })
  t.same(parseCheck('db=exec:pg_isready -q', {}), { name: 'db', type: 'exec', command: ['pg_isready', '-q'] })
  t.same(parseCheck('http:80', {}), { name: 'http', type: 'http', port: 80, path: '/' })
  t.throws(() => parseCheck('ping:1', {}))
  t.throws(() => parseCheck('exec:', {}))
})
