import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { isPlexusError } from '../../../src/lib/errors.js'
import { jobProblems, parseJobText, type SpecProblem, validateJob } from '../../../src/scheduler/spec.js'

const EXAMPLES = join(import.meta.dirname, '../../../../examples')

function problemsOf(text: string): SpecProblem[] {
  try {
    parseJobText(text)
  } catch (err) {
    if (isPlexusError(err, 'PLX_JOB_INVALID')) return (err.details as { problems: SpecProblem[] }).problems
    throw err
  }
  return []
}

const task = {
  name: 't',
  driver: 'exec',
  config: { command: ['true'] },
  resources: { cpu: 100, memoryMb: 64 },
}

t.test('every example in examples/ is a valid job', async (t) => {
  const files = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f))
  t.ok(files.length >= 3, 'examples exist')
  for (const f of files) {
    const job = parseJobText(readFileSync(join(EXAMPLES, f), 'utf8'), f)
    t.ok(job.groups.length > 0, `${f} parses`)
  }
})

t.test('all problems reported at once, each with its path and line', async (t) => {
  const yaml = `name: Bad_Name
type: cron
groups:
  - name: web
    count: -1
    colour: blue
    tasks:
      - name: app
        driver: exec
        config: { command: [x] }
        resources: { cpu: 0, memoryMb: 64 }
`
  const problems = problemsOf(yaml)
  const byPath = new Map(problems.map((p) => [p.path, p]))
  t.equal(byPath.get('name')?.line, 1)
  t.match(byPath.get('type')?.message, /one of "service", "batch", "system"/)
  t.equal(byPath.get('type')?.line, 2)
  t.equal(byPath.get('groups.0.count')?.line, 5)
  t.equal(byPath.get('groups.0.colour')?.message, 'is not a known field')
  t.equal(byPath.get('groups.0.colour')?.line, 6)
  t.equal(byPath.get('groups.0.tasks.0.resources.cpu')?.line, 11)
  t.equal(problems.length, 5, JSON.stringify(problems))
})

t.test('YAML syntax error: the line, nothing else parsed', async (t) => {
  const problems = problemsOf('name: x\ngroups: [\n  - a: 1\n')
  t.ok(problems.length >= 1)
  t.ok(problems.every((p) => typeof p.line === 'number'))
})

t.test('duplicate keys are an error, not the last one winning', async (t) => {
  const problems = problemsOf('name: a\nname: b\ntype: service\ngroups: []\n')
  t.ok(
    problems.some((p) => /unique|duplicate/i.test(p.message)),
    JSON.stringify(problems),
  )
})

t.test('JSON is accepted as well', async (t) => {
  const job = parseJobText(
    JSON.stringify({ name: 'j', type: 'batch', groups: [{ name: 'g', count: 1, tasks: [task] }] }),
  )
  t.equal(job.groups[0]?.tasks[0]?.resources.cpu, 100)
})

t.test('per-operator fields and meaning rules', async (t) => {
  const job = {
    name: 'j',
    type: 'service',
    constraints: [{ operator: 'distinct_hosts', limit: 2 }],
    groups: [
      {
        name: 'g',
        count: 1,
        tasks: [
          task,
          { ...task, driver: 'podman', config: {} },
          { ...task, name: 'both', driver: 'podman', config: { image: 'localhost/x', rootfs: '/srv/x' } },
          { ...task, name: 'img', config: { command: ['x'], image: 'localhost/x' } },
        ],
        constraints: [
          { operator: '=', attribute: 'zone' },
          { operator: 'in', attribute: 'zone', value: 'a' },
          { operator: 'regexp', attribute: 'name', value: '(' },
          { operator: 'exists' },
          { operator: 'distinct_property', attribute: 'zone', limit: 2 },
        ],
        affinities: [{ service: 'db', attribute: 'zone', weight: 10 }],
        spread: [
          {
            attribute: 'zone',
            targets: [
              { value: 'a', percent: 80 },
              { value: 'b', percent: 30 },
            ],
          },
        ],
        talksTo: [{ service: 'g' }],
        ports: [
          { hostPort: 80, containerPort: 80, protocol: 'tcp' },
          { hostPort: 80, containerPort: 81, protocol: 'tcp' },
        ],
        links: ['a:b:c'],
      },
      { name: 'g', tasks: [task] },
    ],
  }
  const paths = jobProblems(job).map((p) => p.path)
  t.same(
    paths.sort(),
    [
      'constraints.0.limit',
      'groups.0.affinities.0',
      'groups.0.constraints.0.value',
      'groups.0.constraints.1.value',
      'groups.0.constraints.1.values',
      'groups.0.constraints.2.value',
      'groups.0.constraints.3.attribute',
      'groups.0.links.0',
      'groups.0.ports.1',
      'groups.0.spread.0.targets',
      'groups.0.talksTo.0.service',
      'groups.0.tasks.1.config',
      'groups.0.tasks.1.name',
      'groups.0.tasks.2.config',
      'groups.0.tasks.3.config.image',
      'groups.1.count',
      'groups.1.name',
    ].sort(),
  )
})

t.test("a group service's checks follow the services module's rules at submission", async (t) => {
  const withChecks = (checks: unknown[]) =>
    jobProblems({
      name: 'j',
      type: 'service',
      groups: [
        {
          name: 'g',
          count: 1,
          tasks: [task],
          service: { name: 'web', ports: [{ name: 'http', port: 80, protocol: 'tcp' }], checks },
        },
      ],
    })
  t.same(withChecks([{ name: 'up', type: 'tcp', port: 'http' }]), [])
  t.match(withChecks([{ name: 'up', type: 'tcp', port: 'db' }]), [
    { path: 'groups.0.service.checks', message: /no port named "db"/ },
  ])
  t.match(withChecks([{ name: 'up', type: 'exec' }]), [
    { path: 'groups.0.service.checks', message: /exec needs a command/ },
  ])
})

t.test('validateJob throws PLX_JOB_INVALID with status 400', async (t) => {
  t.throws(() => validateJob({ name: 'x' }), { code: 'PLX_JOB_INVALID', details: { status: 400 } })
  t.equal(validateJob({ name: 'x', type: 'system', groups: [{ name: 'g', tasks: [task] }] }).type, 'system')
})

t.test(
  'task templates: each must compile, stay in the task directory and have a file of its own',
  async (t) => {
    const withTemplates = (templates: unknown[]) =>
      jobProblems({
        name: 'j',
        type: 'service',
        groups: [{ name: 'g', count: 1, tasks: [{ ...task, templates }] }],
      })
    t.same(
      withTemplates([
        {
          data: 'x={{key "config/a"}}',
          dest: 'conf/a.conf',
          changeMode: 'signal',
          signal: 'SIGHUP',
          perms: '0600',
        },
        { data: '{{#each (tree "config/b/")}}{{name}}{{/each}}', dest: 'b' },
      ]),
      [],
      'valid templates pass',
    )
    const problems = withTemplates([
      { data: '{{#each x}}', dest: 'a' },
      { data: '{{key config}}', dest: '../etc/passwd' },
      { data: 'ok', dest: 'a', signal: 'SIGHUP' },
    ])
    const at = (p: string) =>
      problems.filter((x) => x.path === `groups.0.tasks.0.templates.${p}`).map((x) => x.message)
    t.match(
      at('0.data').join(),
      /PLX_TEMPLATE_SYNTAX|Parse error|Expecting/,
      'a template that does not parse',
    )
    t.match(at('1.data').join(), /one quoted, non-empty name/, 'a key that is not a literal')
    t.match(at('1.dest').join(), /no "\." or "\.\." segments/, 'a dest outside the task directory')
    t.match(at('2.dest').join(), /also the file of/, 'two templates, one file')
    t.match(at('2.signal').join(), /only with changeMode "signal"/)
    t.equal(problems.length, 5, JSON.stringify(problems))
    const schema = withTemplates([{ data: 'ok', dest: '/abs', changeMode: 'reload' }]).map((p) => p.path)
    t.same(schema.sort(), ['groups.0.tasks.0.templates.0.changeMode', 'groups.0.tasks.0.templates.0.dest'])
  },
)

t.test("a group's network: the CNI plugin's rules, every problem at its path", async (t) => {
  const withNetwork = (network: unknown, count = 1, type = 'service') =>
    jobProblems({ name: 'j', type, groups: [{ name: 'g', count, tasks: [task], network }] })
  const good = {
    ip: '10.244.3.9',
    mac: '02:00:00:00:00:09',
    gateway: '10.244.3.5',
    routes: [{ dst: '192.168.0.0/16' }, { dst: '172.16.0.0/12', gw: '10.244.3.6' }],
  }
  t.same(withNetwork(good), [])
  t.same(
    withNetwork({ gateway: '10.244.3.5', routes: good.routes }, 3),
    [],
    'gateway and routes suit any count',
  )
  t.same(
    withNetwork({
      ip: '10.244.3.300',
      mac: 'ff:ff:ff:ff:ff:ff',
      gateway: 'x',
      routes: [{ dst: '1.2.3.4/8' }, { dst: '10.0.0.0/8', gw: '::1' }],
    }),
    [
      { path: 'groups.0.network.ip', message: '"10.244.3.300" is not an IPv4 address' },
      { path: 'groups.0.network.mac', message: '"ff:ff:ff:ff:ff:ff" is not a unicast MAC address' },
      { path: 'groups.0.network.gateway', message: '"x" is not an IPv4 address' },
      {
        path: 'groups.0.network.routes.0.dst',
        message: '"1.2.3.4/8" has host bits set (the network is 1.0.0.0/8)',
      },
      { path: 'groups.0.network.routes.1.gw', message: '"::1" is IPv6; the Plexus overlay is IPv4 only' },
    ],
  )
  t.match(withNetwork({ ip: '10.244.3.9', mac: '02:00:00:00:00:09' }, 2), [
    { path: 'groups.0.network.ip', message: /static address, one container's: the group runs 2 allocations/ },
    { path: 'groups.0.network.mac', message: /MAC address, one container's: the group runs 2 allocations/ },
  ])
  t.match(withNetwork({ ip: '10.244.3.9' }, 1, 'system'), [
    { path: 'groups.0.network.ip', message: /a system job runs one allocation per host/ },
  ])
  t.match(withNetwork({ routes: [{ dst: '10.0.0.0/8', mtu: 1 }], dns: {} }), [
    { path: 'groups.0.network.dns', message: 'is not a known field' },
    { path: 'groups.0.network.routes.0.mtu', message: 'is not a known field' },
  ])
  const lines = problemsOf(
    'name: j\ntype: batch\ngroups:\n  - name: g\n    count: 1\n    tasks: [{name: t, driver: exec, config: {command: [x]}, resources: {cpu: 1, memoryMb: 1}}]\n    network:\n      gateway: 10.1\n',
  )
  t.match(lines, [{ path: 'groups.0.network.gateway', line: 8 }])
})

t.test("a group's networks: each once, each there is, every problem at its path", async (t) => {
  const networks = new Map([
    ['blue', 'bridge' as const],
    ['lan', 'macvlan' as const],
  ])
  const withNetworks = (list: unknown, extra: Record<string, unknown> = {}) =>
    jobProblems(
      {
        name: 'j',
        type: 'service',
        groups: [{ name: 'g', count: 2, tasks: [task], networks: list, ...extra }],
      },
      { networks },
    )
  t.same(withNetworks(['blue', 'plexus', 'lan']), [], 'named ones and the cluster network')
  t.same(withNetworks(['lan']), [], 'a macvlan network alone')
  t.same(withNetworks(['blue', 'red', 'blue', 'plexus', 'plexus']), [
    {
      path: 'groups.0.networks.1',
      message: 'no network "red" (plexctl network ls lists them; "plexus" is the cluster network)',
    },
    { path: 'groups.0.networks.2', message: '"blue" is also groups.0.networks.0' },
    { path: 'groups.0.networks.4', message: '"plexus" is also groups.0.networks.3' },
  ])
  t.same(withNetworks(['lan', 'blue'], { ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }), [
    {
      path: 'groups.0.networks.0',
      message:
        '"lan" is a macvlan network, on the underlay itself: the group\'s ports cannot be published on its first interface',
    },
  ])
  t.same(
    withNetworks(['blue', 'lan'], { ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }),
    [],
    'ports are published on eth0 only',
  )
  t.match(withNetworks(['Blue', 'a_b', '']), [
    { path: 'groups.0.networks.0', message: /must match pattern/ },
    { path: 'groups.0.networks.1', message: /must match pattern/ },
    { path: 'groups.0.networks.2', message: /must match pattern/ },
  ])
  t.match(withNetworks(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']), [
    { path: 'groups.0.networks', message: 'must NOT have more than 8 items' },
  ])
  t.match(withNetworks([]), [{ path: 'groups.0.networks', message: 'must NOT have fewer than 1 items' }])
  t.same(
    jobProblems({
      name: 'j',
      type: 'batch',
      groups: [{ name: 'g', count: 1, tasks: [task], networks: ['red'] }],
    }),
    [],
    'without the store (a spec read alone) names are not looked up',
  )
  const lines = problemsOf(
    'name: j\ntype: batch\ngroups:\n  - name: g\n    count: 1\n    tasks: [{name: t, driver: exec, config: {command: [x]}, resources: {cpu: 1, memoryMb: 1}}]\n    networks: [blue, blue]\n',
  )
  t.match(lines, [{ path: 'groups.0.networks.1', line: 7 }])
  const err = (() => {
    try {
      validateJob(
        { name: 'j', type: 'batch', groups: [{ name: 'g', count: 1, tasks: [task], networks: ['red'] }] },
        { networks },
      )
    } catch (e) {
      return e
    }
  })()
  t.match(
    isPlexusError(err) && err,
    { code: 'PLX_JOB_INVALID', details: { status: 400 } },
    'a 400 PLX_JOB_INVALID',
  )
})
