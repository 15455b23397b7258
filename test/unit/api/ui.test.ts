import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { installErrorContract } from '../../../src/api/errors.js'
import { loadUiFiles, uiRoutes } from '../../../src/api/routes/ui.js'

/** a UI folder with the bundle's files, a file of an unknown type, a sub-folder and a symlink out */
async function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-ui-route-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ui = join(dir, 'ui')
  mkdirSync(join(ui, 'sub'), { recursive: true })
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>t</title>')
  writeFileSync(join(ui, 'app.js'), 'export {}')
  writeFileSync(join(ui, 'app.css'), 'body{}')
  writeFileSync(join(ui, 'notes.txt'), 'not served')
  writeFileSync(join(ui, 'sub', 'x.js'), 'nested')
  writeFileSync(join(dir, 'secret.json'), '{"secret":1}')
  symlinkSync(join(dir, 'secret.json'), join(ui, 'link.json'))
  const app = Fastify()
  installErrorContract(app, () => undefined)
  await app.register(uiRoutes, { files: loadUiFiles(ui) })
  t.teardown(() => app.close())
  // a file made after start-up is never seen
  symlinkSync(join(dir, 'secret.json'), join(ui, 'later.json'))
  return app
}

t.test('GET /ui/ serves the bundle with its content types', async (t) => {
  const app = await setup(t)
  const redirect = await app.inject('/ui')
  t.equal(redirect.statusCode, 301)
  t.equal(redirect.headers.location, '/ui/')
  const index = await app.inject('/ui/')
  t.equal(index.statusCode, 200)
  t.equal(index.headers['content-type'], 'text/html; charset=utf-8')
  t.match(index.body, /<title>t<\/title>/)
  t.match(String(index.headers['content-security-policy']), /default-src 'self'/)
  t.equal(index.headers['x-content-type-options'], 'nosniff')
  const js = await app.inject('/ui/app.js')
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal(js.body, 'export {}')
  t.equal((await app.inject('/ui/app.css')).headers['content-type'], 'text/css; charset=utf-8')
})

t.test('no path leaves the UI folder and unknown types are not served', async (t) => {
  const app = await setup(t)
  for (const url of [
    '/ui/../secret.json',
    '/ui/..%2fsecret.json',
    '/ui/%2e%2e%2fsecret.json',
    '/ui/sub/x.js',
    '/ui/sub%2fx.js',
    '/ui/notes.txt',
    '/ui/link.json',
    '/ui/later.json',
    '/ui/nothing.js',
  ]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.notMatch(res.body, /"secret":1|^nested$/, url)
  }
  const res = await app.inject('/ui/nothing.js')
  t.equal(res.json().error, 'PLX_UI_NOT_FOUND')
})

t.test('an agent without a built UI says so', async (t) => {
  const app = Fastify()
  installErrorContract(app, () => undefined)
  await app.register(uiRoutes, { files: new Map() })
  t.teardown(() => app.close())
  const res = await app.inject('/ui/')
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_UI_NOT_BUILT')
})

t.test('the agent finds the bundle make build wrote (dist/ui)', async (t) => {
  const files = loadUiFiles()
  t.ok(files.has('index.html'), 'index.html')
  t.ok(files.has('app.js'), 'app.js')
  t.ok(files.has('app.css'), 'app.css')
})
