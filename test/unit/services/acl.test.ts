// The application API's access decisions (src/services/acl.ts): the agents'
// keys are never a container's to write, the most specific rule decides and a
// deny wins among equals, built-in grants exist only under a deny default, and
// every decision names its rule.
import t from 'tap'
import { labelsKey } from '../../../src/cluster/membership.js'
import { NETWORK_CONFIG_KEY } from '../../../src/ipam/config.js'
import { type AclRequest, aclFor, aclForToken, decide, mayReadSomeUnder } from '../../../src/services/acl.js'
import type { AclPolicyValue } from '../../../src/store/schemas.js'
import {
  ACL_DEFAULT_KEY,
  ACL_POLICY_PREFIX,
  DRAIN_PREFIX,
  JOB_PREFIX,
  OWNED_PREFIXES,
  SERVICE_PREFIX,
} from '../../../src/store/types.js'

const kv = (op: 'read' | 'write', key: string): AclRequest => ({ kind: 'kv', op, key })
const svc = (op: 'discover' | 'register', name: string): AclRequest => ({ kind: 'service', op, name })
const web = { name: 'web-1', service: 'web' }

t.test(
  'the agents’ keys are never written by a container, whatever a policy or the default says',
  async (t) => {
    const everything: AclPolicyValue = {
      name: 'all',
      services: ['web'],
      rules: [{ kv: '', access: 'write' }],
    }
    const acl = aclFor(web, [everything], 'allow')
    const owned = [
      ...OWNED_PREFIXES.map((p) => `${p}peer/x`),
      `${SERVICE_PREFIX}web`,
      `${JOB_PREFIX}shop`,
      NETWORK_CONFIG_KEY,
      `${DRAIN_PREFIX}h1`,
      labelsKey('h1'),
      ACL_DEFAULT_KEY,
      `${ACL_POLICY_PREFIX}all`,
    ]
    for (const key of owned) {
      const d = decide(acl, kv('write', key))
      t.notOk(d.allow, `write ${key} refused`)
      t.match(d.rule, /^built-in: ".+" is the agents' own/)
    }
    t.notOk(decide(acl, kv('read', ACL_DEFAULT_KEY)).allow, 'the policies are not even read')
    t.ok(
      decide(acl, kv('read', `${JOB_PREFIX}shop`)).allow,
      'other agent keys may be read when a rule allows',
    )
    t.ok(decide(acl, kv('write', 'config/web/port')).allow, 'an application key may be written')
  },
)

t.test('allow by default: no rule needed, a deny rule narrows it', async (t) => {
  t.same(decide(aclFor(web, [], 'allow'), kv('write', 'config/web/x')), {
    allow: true,
    rule: 'default policy allow',
  })
  const noDb: AclPolicyValue = {
    name: 'no-db',
    services: ['web'],
    rules: [{ kv: 'config/db/', access: 'deny' }],
  }
  const acl = aclFor(web, [noDb], 'allow')
  t.same(decide(acl, kv('read', 'config/db/password')), {
    allow: false,
    rule: 'policy "no-db" kv "config/db/" deny',
  })
  t.ok(decide(acl, kv('write', 'config/web/x')).allow, 'built-in read grants do not narrow an allow default')
  t.ok(
    decide(aclFor({ name: 'x', service: 'api' }, [noDb], 'allow'), kv('read', 'config/db/a')).allow,
    'bound to web only',
  )
})

t.test('deny by default: the built-in grants and nothing else', async (t) => {
  const acl = aclFor(web, [], 'deny')
  t.same(decide(acl, kv('read', 'config/web/port')), { allow: true, rule: 'built-in kv "config/web/" read' })
  t.same(decide(acl, kv('write', 'config/web/port')), {
    allow: false,
    rule: 'built-in kv "config/web/" read',
  })
  t.ok(decide(acl, kv('read', 'config/shared/motd')).allow, 'config/shared/ is read by all')
  t.same(decide(acl, kv('read', 'config/api/port')), { allow: false, rule: 'default policy deny' })
  t.ok(decide(acl, svc('register', 'web')).allow, 'registers in its own service')
  t.notOk(decide(acl, svc('register', 'api')).allow, 'not in another')
  t.notOk(decide(acl, svc('discover', 'api')).allow, 'discovery needs a rule')
  const lone = aclFor({ name: 'lone' }, [], 'deny')
  t.notOk(decide(lone, kv('read', 'config/undefined/x')).allow, 'no service, no config/<service>/ grant')
})

t.test('the most specific rule decides; among equals a deny wins; write implies read', async (t) => {
  const p: AclPolicyValue = {
    name: 'p',
    services: ['web'],
    rules: [
      { kv: 'config/', access: 'read' },
      { kv: 'config/web/', access: 'write' },
      { kv: 'config/web/secret', access: 'deny' },
      { service: '*', access: 'discover' },
      { service: 'db*', access: 'deny' },
      { service: 'db-replica', access: 'discover' },
    ],
  }
  const q: AclPolicyValue = {
    name: 'q',
    containers: ['web-1'],
    rules: [{ kv: 'config/web/', access: 'deny' }],
  }
  const acl = aclFor(web, [p], 'deny')
  t.ok(decide(acl, kv('write', 'config/web/port')).allow)
  t.ok(decide(acl, kv('read', 'config/web/port')).allow, 'write implies read')
  t.notOk(decide(acl, kv('write', 'config/api/port')).allow, 'config/ is read only')
  t.same(decide(acl, kv('read', 'config/web/secret/a')).rule, 'policy "p" kv "config/web/secret" deny')
  t.ok(decide(acl, svc('discover', 'api')).allow)
  t.notOk(decide(acl, svc('discover', 'db-main')).allow, 'a longer prefix beats *')
  t.ok(decide(acl, svc('discover', 'db-replica')).allow, 'an exact name beats a prefix')
  t.notOk(decide(acl, svc('register', 'api')).allow, 'discover does not let register')
  const both = aclFor(web, [p, q], 'deny')
  t.same(
    decide(both, kv('write', 'config/web/port')),
    { allow: false, rule: 'policy "q" kv "config/web/" deny' },
    'bound by container name; a deny among equally specific rules wins',
  )
})

t.test('listings: some key below may be readable', async (t) => {
  const p: AclPolicyValue = { name: 'p', services: ['web'], rules: [{ kv: 'config/web/', access: 'read' }] }
  const acl = aclFor(web, [p], 'deny')
  t.ok(mayReadSomeUnder(acl, 'config/').allow, 'config/web/ is under config/')
  t.notOk(mayReadSomeUnder(acl, 'jobs/').allow)
  t.notOk(mayReadSomeUnder(aclFor(web, [], 'allow'), 'acl/').allow, 'never acl/')
})

t.test('tokens: their policies and nothing else; the agents’ keys by their rules', async (t) => {
  const reader: AclPolicyValue = { name: 'reader', rules: [{ operator: 'read' }, { kv: '', access: 'read' }] }
  const admin: AclPolicyValue = { name: 'admin', rules: [{ operator: 'write' }, { kv: '', access: 'write' }] }
  const token = { name: 'ci', policies: ['reader'], createdAt: '2026-12-03T00:00:00Z' }
  const ro = aclForToken(token, [reader, admin])
  t.same(decide(ro, { kind: 'operator', op: 'read' }), { allow: true, rule: 'policy "reader" operator read' })
  t.same(decide(ro, { kind: 'operator', op: 'write' }), {
    allow: false,
    rule: 'policy "reader" operator read',
  })
  t.notOk(decide(ro, kv('write', 'config/x')).allow)
  t.notOk(decide(ro, svc('discover', 'web')).allow, 'default deny, whatever acl/default says')
  const rw = aclForToken({ ...token, policies: ['admin'] }, [reader, admin])
  t.ok(
    decide(rw, kv('write', NETWORK_CONFIG_KEY)).allow,
    'an operator token may write agent keys its rules grant',
  )
  t.same(decide(aclForToken({ ...token, policies: ['gone'] }, [reader]), { kind: 'operator', op: 'read' }), {
    allow: false,
    rule: 'default policy deny',
  })
})
