// The pure part of a task's templates: the data from store records and the
// catalog (healthy members only, nearest first), what a render gives, and
// what a set of changed files asks of the running task.
import t from 'tap'
import {
  changeAction,
  dependenciesOf,
  renderTemplates,
  taskTemplates,
  templateData,
  templatePrefixes,
} from '../../../src/runner/templates.js'
import type { TaskSpec } from '../../../src/scheduler/spec.js'
import { buildCatalog } from '../../../src/services/catalog.js'
import type { StoreRecord } from '../../../src/store/types.js'
import { endpoint, rec } from '../../helpers/dns-zone.js'

const spec = (templates: TaskSpec['templates']): TaskSpec => ({
  name: 'app',
  driver: 'exec',
  config: { command: ['true'] },
  resources: { cpu: 10, memoryMb: 8 },
  templates,
})

const records: StoreRecord[] = [
  rec('config/app/greeting', 'hello'),
  rec('config/app/list/a', 1),
  rec('config/app/list/b', 2),
]
const store = {
  get: (k: string) => records.find((r) => r.key === k),
  list: (p: string) => records.filter((r) => r.key.startsWith(p)),
}
const catalog = () =>
  buildCatalog({
    nodes: [],
    endpoints: [
      endpoint('peer1', 'web1', {
        ipv4: '10.244.1.2',
        service: 'web',
        ports: [{ port: 80, protocol: 'tcp' }],
      }),
      endpoint('peer1', 'web2', { ipv4: '10.244.1.3', service: 'web' }),
    ],
    services: [],
    registrations: [],
    health: [
      rec('health/peer1/web2-up', {
        endpointKey: 'endpoints/peer1/web2/eth0',
        status: 'critical',
        output: '',
        checkedAt: '2026-01-01T00:00:00Z',
      }),
    ],
  })

t.test('templates render from the store and the catalog; a missing key is an error naming it', async (t) => {
  const ts = taskTemplates(
    spec([
      { data: 'g={{key "config/app/greeting"}}', dest: 'a.conf' },
      { data: '{{#each (tree "config/app/list/")}}{{name}}={{value}};{{/each}}', dest: 'b.conf' },
      { data: '{{#each (service "web")}}{{address}}:{{port}} {{/each}}', dest: 'c.conf', changeMode: 'noop' },
    ]),
  )
  t.same(dependenciesOf(ts), {
    keys: ['config/app/greeting'],
    trees: ['config/app/list/'],
    services: ['web'],
  })
  t.same(templatePrefixes(ts), [
    'config/app/greeting',
    'config/app/list/',
    'endpoints/',
    'health/',
    'registrations/',
    'services/web',
  ])
  const files = renderTemplates(ts, templateData(dependenciesOf(ts), store, catalog, 'peer1'))
  t.same(Object.fromEntries(files), { 'a.conf': 'g=hello', 'b.conf': 'a=1;b=2;', 'c.conf': '10.244.1.2:80 ' })
  const missing = taskTemplates(spec([{ data: '{{key "config/app/nope"}}', dest: 'x' }]))
  t.throws(() => renderTemplates(missing, templateData(dependenciesOf(missing), store, catalog, 'peer1')), {
    code: 'PLX_TEMPLATE_MISSING_KEY',
    message: /config\/app\/nope/,
  })
})

t.test('changed files ask for the strongest changeMode among them, each signal once', async (t) => {
  const ts = taskTemplates(
    spec([
      { data: 'a', dest: 'restart' },
      { data: 'b', dest: 'hup1', changeMode: 'signal' },
      { data: 'c', dest: 'hup2', changeMode: 'signal', signal: 'SIGHUP' },
      { data: 'd', dest: 'usr1', changeMode: 'signal', signal: 'SIGUSR1' },
      { data: 'e', dest: 'quiet', changeMode: 'noop' },
    ]),
  )
  t.same(changeAction(ts, new Set()), { kind: 'none' })
  t.same(changeAction(ts, new Set(['quiet'])), { kind: 'none' })
  t.same(changeAction(ts, new Set(['hup1', 'hup2', 'quiet'])), { kind: 'signal', signals: ['SIGHUP'] })
  t.same(changeAction(ts, new Set(['hup1', 'usr1'])), { kind: 'signal', signals: ['SIGHUP', 'SIGUSR1'] })
  t.same(changeAction(ts, new Set(['usr1', 'restart'])), { kind: 'restart' })
})
