import t from 'tap'
import { parseConfigText, resolveConfig } from '../../../src/agent/config.js'

t.test('valid config merges defaults < file < flags', async (t) => {
  const file = parseConfigText(
    'a.json',
    '{ // comment\n "name": "h1", "runDir": "/tmp/r", "labels": {"zone": "a"} }',
  )
  const cfg = resolveConfig(file, { logLevel: 'debug', labels: { rack: '1' } })
  t.equal(cfg.name, 'h1')
  t.equal(cfg.api.socket, '/tmp/r/plexusd.sock', 'socket follows runDir')
  t.equal(cfg.logLevel, 'debug')
  t.same(cfg.labels, { zone: 'a', rack: '1' })
  t.equal(cfg.stateDir, '/var/lib/plexus')
})

t.test('syntax error names file, line and column', async (t) => {
  t.throws(() => parseConfigText('/etc/p.json', '{\n  "name": "h1",\n  "x": }'), {
    code: 'PLX_CONFIG_SYNTAX',
    message: /^\/etc\/p\.json:3:\d+: /,
  })
})

t.test('unknown field names the field and its line', async (t) => {
  t.throws(() => parseConfigText('c.json', '{\n "name": "h1",\n "api": {\n   "sockt": "/x"\n }\n}'), {
    code: 'PLX_CONFIG_INVALID',
    message: /^c\.json:4:\d+: field "api\.sockt" is not a known field/,
  })
})

t.test('wrong values name the field and its line', async (t) => {
  t.throws(() => parseConfigText('c.json', '{\n "name": "h1",\n "logLevel": 5\n}'), {
    code: 'PLX_CONFIG_INVALID',
    message: /^c\.json:3:\d+: field "logLevel"/,
  })
  t.throws(() => parseConfigText('c.json', '{"underlayAddress": "300.1.1.1"}'), {
    message: /field "underlayAddress"/,
  })
  t.throws(() => parseConfigText('c.json', '{"name": "Bad_Name"}'), { message: /field "name"/ })
})
