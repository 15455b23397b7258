import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PLEXCTL, REPO, run } from '../helpers/fixture.js'

const PLEXUSD = join(REPO, 'dist/bin/plexusd')

t.test('plexctl usage errors exit 2 with usage', async (t) => {
  const unknown = run(PLEXCTL, ['frobnicate'])
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /unknown command 'frobnicate'/)
  t.match(unknown.stderr, /Usage: plexctl/)
  const flag = run(PLEXCTL, ['status', '--bogus'])
  t.equal(flag.status, 2)
  t.match(flag.stderr, /unknown option '--bogus'/)
  const fmt = run(PLEXCTL, ['-o', 'yaml', 'status'])
  t.equal(fmt.status, 2)
})

t.test('plexctl says clearly when the agent is not running', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plx-cli-'))
  const r = run(PLEXCTL, ['--socket', join(dir, 'none.sock'), 'status'])
  t.equal(r.status, 1)
  t.match(r.stderr, new RegExp(`cannot reach plexusd at ${dir}/none.sock: is it running\\?`))
})

t.test('plexusd with a malformed config exits naming file, line and field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plx-cfg-'))
  const file = join(dir, 'plexusd.json')
  writeFileSync(file, '{\n  "name": "h1",\n  "api": {\n    "sockett": "/x"\n  }\n}\n')
  const r = run(PLEXUSD, ['--config', file])
  t.equal(r.status, 2)
  t.match(r.stderr, `${file}:4:`)
  t.match(r.stderr, /field "api\.sockett" is not a known field/)

  writeFileSync(file, '{ "name": "h1", }')
  const syntax = run(PLEXUSD, ['--config', file])
  t.equal(syntax.status, 2)
  t.match(syntax.stderr, `${file}:1:`)
})
