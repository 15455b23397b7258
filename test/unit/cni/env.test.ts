import t from 'tap'
import { parseCniArgs, parseEnv } from '../../../cni/lib/env.js'
import { CniCode } from '../../../cni/lib/errors.js'

const base = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
}

t.test('complete ADD environment', async (t) => {
  const env = parseEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-1;X=a=b' })
  t.equal(env.command, 'ADD')
  t.equal(env.containerId, 'c0ffee')
  t.same(env.args, { IgnoreUnknown: '1', K8S_POD_NAME: 'web-1', X: 'a=b' }, 'value keeps later "="')
})

t.test('missing or unknown CNI_COMMAND', async (t) => {
  t.throws(() => parseEnv({}), { code: CniCode.INVALID_ENV, msg: /CNI_COMMAND/ })
  t.throws(() => parseEnv({ ...base, CNI_COMMAND: 'ATTACH' }), { code: CniCode.INVALID_ENV, msg: /ATTACH/ })
})

t.test('each command names its missing variables', async (t) => {
  for (const name of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']) {
    const env: Record<string, string> = { ...base }
    delete env[name]
    t.throws(() => parseEnv(env), { code: CniCode.INVALID_ENV, msg: new RegExp(name) }, `ADD without ${name}`)
  }
  t.throws(() => parseEnv({ CNI_COMMAND: 'CHECK' }), {
    code: CniCode.INVALID_ENV,
    msg: /CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH/,
  })
  t.throws(() => parseEnv({ CNI_COMMAND: 'GC' }), { code: CniCode.INVALID_ENV, msg: /CNI_PATH/ })
})

t.test('DEL accepts an empty CNI_NETNS (runtimes send it once the namespace is gone)', async (t) => {
  const env = parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' })
  t.equal(env.netns, '')
})

t.test('STATUS and GC need no container', async (t) => {
  t.equal(parseEnv({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }).command, 'STATUS')
  t.equal(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }).command, 'GC')
  t.equal(parseEnv({ CNI_COMMAND: 'VERSION' }).command, 'VERSION')
})

t.test('bad values', async (t) => {
  t.throws(() => parseEnv({ ...base, CNI_CONTAINERID: '-abc' }), {
    code: CniCode.INVALID_ENV,
    msg: /CNI_CONTAINERID/,
  })
  t.throws(() => parseEnv({ ...base, CNI_CONTAINERID: 'a/b' }), { code: CniCode.INVALID_ENV })
  t.throws(() => parseEnv({ ...base, CNI_IFNAME: 'a-very-long-ifname0' }), {
    code: CniCode.INVALID_ENV,
    msg: /15/,
  })
  t.throws(() => parseEnv({ ...base, CNI_IFNAME: 'eth/0' }), { code: CniCode.INVALID_ENV })
  t.throws(() => parseEnv({ ...base, CNI_IFNAME: '..' }), { code: CniCode.INVALID_ENV })
  t.throws(() => parseEnv({ ...base, CNI_NETNS: 'netns/x' }), { code: CniCode.INVALID_ENV, msg: /absolute/ })
  t.throws(() => parseEnv({ ...base, CNI_ARGS: 'A=1;broken' }), { code: CniCode.INVALID_ENV, msg: /broken/ })
})

t.test('CNI_ARGS edge cases', async (t) => {
  t.same(parseCniArgs(''), {})
  t.same(parseCniArgs('A=1;;B='), { A: '1', B: '' })
  t.same(
    parseCniArgs('PLEXUS_LABEL=a=1;PLEXUS_LABEL=b=2'),
    { PLEXUS_LABEL: 'a=1,b=2' },
    'repeated keys accumulate',
  )
  t.throws(() => parseCniArgs('=x'), { code: CniCode.INVALID_ENV })
})
