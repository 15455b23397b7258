// plexctl template's pure parts: what a template reads, how it renders (strict,
// no escaping, no code from data), which prefixes it watches, when it renders.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DEFAULT_WAIT, Pending, parseWait } from '../../../src/cli/template/wait.js'
import {
  compileTemplate,
  instanceOf,
  type TemplateData,
  treeOf,
  watchPrefixes,
} from '../../../src/lib/template.js'
import { REPO } from '../../helpers/fixture.js'

const data = (over: Partial<TemplateData> = {}): TemplateData => ({
  keys: new Map(),
  trees: new Map(),
  services: new Map(),
  ...over,
})

t.test('what a template depends on, from its syntax tree', async (t) => {
  const tpl = compileTemplate(
    [
      'listen {{key "config/web/port"}}',
      '{{#each (tree "config/web/limits/")}}{{name}}={{value}}\n{{/each}}',
      '{{#each (service "web")}}server {{address}}:{{port}}\n{{/each}}',
      '{{#if (key "config/web/port")}}{{#each (service "db")}}{{name}}{{/each}}{{/if}}',
    ].join('\n'),
    'web.tpl',
  )
  t.same(tpl.dependencies, {
    keys: ['config/web/port'],
    trees: ['config/web/limits/'],
    services: ['db', 'web'],
  })
  t.same(watchPrefixes(tpl.dependencies), [
    'config/web/limits/',
    'config/web/port',
    'endpoints/',
    'health/',
    'registrations/',
    'services/db',
    'services/web',
  ])
  t.same(
    watchPrefixes({ keys: ['config/web/port', 'config/web/host'], trees: ['config/web/'], services: [] }),
    ['config/web/'],
    'a prefix covered by another is one stream',
  )
  t.same(
    watchPrefixes({ keys: [], trees: [], services: [] }),
    [],
    'a template that reads nothing watches nothing',
  )

  for (const bad of ['{{key}}', '{{key config}}', '{{key "a" "b"}}', '{{#each (service "")}}{{/each}}'])
    t.throws(() => compileTemplate(`x\n${bad}`, 'bad.tpl'), {
      code: 'PLX_TEMPLATE_BAD_CALL',
      message: /bad\.tpl:2/,
    })
  t.throws(() => compileTemplate('{{#each}}', 'broken.tpl'), { code: 'PLX_TEMPLATE_SYNTAX' })
  t.throws(
    () => compileTemplate('{{exec "rm -rf /"}}', 'h.tpl').render(data()),
    { code: 'PLX_TEMPLATE_RENDER', message: /exec/ },
    'only the known helpers exist',
  )
})

t.test('rendering: values as they are, missing keys and fields fail loudly', async (t) => {
  const tpl = compileTemplate(
    'port={{key "config/web/port"}} name={{key "config/web/name"}} {{json (key "config/web/opts")}}\n',
    'web.tpl',
  )
  const keys = new Map<string, unknown>([
    ['config/web/port', 8080],
    ['config/web/name', '<a & "b">'],
    ['config/web/opts', { gzip: true }],
  ])
  t.equal(
    tpl.render(data({ keys })),
    'port=8080 name=<a & "b"> {"gzip":true}\n',
    'not HTML-escaped: this is a config file',
  )
  keys.delete('config/web/name')
  t.throws(() => tpl.render(data({ keys })), {
    code: 'PLX_TEMPLATE_MISSING_KEY',
    message: 'web.tpl:1: key "config/web/name" does not exist',
  })
  const branch = compileTemplate('{{#if (tree "flags/")}}{{key "flags/x"}}{{/if}}ok', 'b.tpl')
  t.equal(branch.render(data()), 'ok', 'a key in a branch not taken is not read')

  const strict = compileTemplate('{{#each (service "web")}}{{address}}:{{port}} {{/each}}', 's.tpl')
  const web = [
    instanceOf({
      endpointKey: 'endpoints/p1/c1/eth0',
      host: 'h1',
      name: 'web1',
      ipv4: '10.244.1.2',
      tags: ['v1'],
      ports: [{ port: 80, protocol: 'tcp' }],
    }),
  ]
  t.equal(strict.render(data({ services: new Map([['web', web]]) })), '10.244.1.2:80 ')
  const portless = web.map(({ port: _, ...rest }) => ({ ...rest, ports: [] }))
  t.throws(
    () => strict.render(data({ services: new Map([['web', portless]]) })),
    { code: 'PLX_TEMPLATE_RENDER', message: /"port" not defined/ },
    'an instance without a port is an error, not an empty string',
  )
  t.throws(() => compileTemplate('{{nothing}}', 'n.tpl').render(data()), { code: 'PLX_TEMPLATE_RENDER' })

  // data is never code: a value that looks like a template stays text
  t.equal(
    compileTemplate('{{key "k"}}', 'k.tpl').render(
      data({ keys: new Map([['k', '{{key "other"}} {{constructor.constructor}}']]) }),
    ),
    '{{key "other"}} {{constructor.constructor}}',
  )
  t.throws(
    () => compileTemplate('{{constructor.name}}', 'p.tpl').render(data()),
    'no prototype properties through the context',
  )

  t.same(
    treeOf('config/web/', [
      { key: 'config/web/b', value: 2, owner: 'p', version: { wall: 1, logical: 0 }, modifyIndex: 2 },
      { key: 'config/web/a', value: 1, owner: 'p', version: { wall: 1, logical: 0 }, modifyIndex: 1 },
    ] as never),
    [
      { name: 'a', path: 'config/web/a', value: 1 },
      { name: 'b', path: 'config/web/b', value: 2 },
    ],
  )
})

t.test('--wait', async (t) => {
  t.same(parseWait('250ms:1s'), { minMs: 250, maxMs: 1000 })
  t.same(parseWait('2s'), { minMs: 2000, maxMs: 8000 }, 'MAX defaults to 4 × MIN')
  t.same(parseWait('0:0'), { minMs: 0, maxMs: 0 })
  t.throws(() => parseWait('1s:500ms'))
  t.throws(() => parseWait('1s:2s:3s'))
  t.throws(() => parseWait('soon'))
})

t.test('debounce decisions', async (t) => {
  /** renders for changes at these times: the timer fires at each due time, renders take no time */
  const renders = (changes: number[], wait = DEFAULT_WAIT): number[] => {
    const p = new Pending(wait)
    const out: number[] = []
    const fireUntil = (until: number) => {
      for (let due = p.due(); due !== undefined && due <= until; due = p.due()) {
        t.ok(p.take(due))
        out.push(due)
      }
    }
    for (const at of changes) {
      fireUntil(at - 1)
      p.change(at)
    }
    fireUntil(Number.POSITIVE_INFINITY)
    return out
  }
  const burst = Array.from({ length: 100 }, (_, i) => i * 10)
  const r = renders(burst)
  t.ok(r.length <= 5, `100 changes within 1 s: ${r.length} renders (${r.join(', ')} ms)`)
  t.same(r, [1000], 'one render, at MAX after the first change')
  t.same(
    renders(Array.from({ length: 100 }, (_, i) => 500 + i * 10)).length,
    1,
    'the same burst after an idle time: one render',
  )
  t.same(
    renders([...burst, 1100]),
    [1000, 1350],
    'a change after the render that MAX forced: one more, after its quiet period',
  )
  t.same(renders([0]), [250], 'one change: after MIN')
  t.same(renders([0, 100, 200]), [450], 'changes closer than MIN: one render, MIN after the last')
  t.same(renders([0, 1000]), [250, 1250], 'changes further apart than MIN: one render each')
  t.same(
    renders(
      Array.from({ length: 50 }, (_, i) => i * 100),
      { minMs: 200, maxMs: 1000 },
    ).length,
    5,
    'a steady stream still renders every MAX',
  )
  const p = new Pending({ minMs: 100, maxMs: 400 })
  t.equal(p.due(), undefined, 'nothing pending')
  t.notOk(p.take(1000))
  t.equal(p.change(0), 100)
  t.notOk(p.take(99), 'not before it is due')
  t.ok(p.take(100))
  t.equal(p.due(), undefined, 'taken')
})

t.test('examples/nginx-upstream.tpl renders', async (t) => {
  const file = join(REPO, 'examples/nginx-upstream.tpl')
  const tpl = compileTemplate(readFileSync(file, 'utf8'), file)
  const member = (name: string, ipv4: string, host: string) =>
    instanceOf({
      endpointKey: `endpoints/p/${name}/eth0`,
      host,
      name,
      ipv4,
      tags: [],
      ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    })
  const keys = new Map<string, unknown>([
    ['config/proxy/listen', 80],
    ['config/proxy/server-name', 'shop.example.com'],
  ])
  const trees = new Map([['config/proxy/headers/', [{ name: 'X-Forwarded-Proto', path: '', value: 'http' }]]])
  const two = tpl.render(
    data({
      keys,
      trees,
      services: new Map([['web', [member('web1', '10.244.1.2', 'h1'), member('web2', '10.244.2.2', 'h2')]]]),
    }),
  )
  t.match(
    two,
    /upstream web \{\n {2}least_conn;\n {2}server 10\.244\.1\.2:8080; # web1 on h1\n {2}server 10\.244\.2\.2:8080; # web2 on h2\n\}/,
  )
  t.match(two, /listen 80;\n {2}server_name shop\.example\.com;/)
  t.match(two, /proxy_set_header X-Forwarded-Proto http;\n {2}\}/)
  t.notMatch(two, /\{\{|!--/, 'the comment is not in the output')
  t.match(
    tpl.render(data({ keys, trees })),
    /server 127\.0\.0\.1:9 down;/,
    'no instance: a placeholder server',
  )
})
