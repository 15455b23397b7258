// Access control for the application API (Consul's ACL rules, cut to what a
// container does): which KV keys a container may read or write, which services
// it may discover or register in. Policies are records (`acl/policies/<name>`,
// operators only); `acl/default` says what a request no rule matches gets.
// Every decision names the rule that made it, so a 403 explains itself. Pure
// but for `aclRecords`, the one reader of the records.
import { aclDefaultCodec, aclPolicyCodec } from '../store/codecs.js'
import type { AclPolicyValue, AclRule, AclTokenValue } from '../store/schemas.js'
import { ACL_DEFAULT_KEY, ACL_POLICY_PREFIX, AGENT_KEY_PREFIXES, type ReadableStore } from '../store/types.js'

export type DefaultPolicy = 'allow' | 'deny'

/** who asks: a container endpoint of this host */
export interface AclCaller {
  /** container name */
  name: string
  /** the service it joined when it was attached (CNI); a self-registration does not count, or a container could name its own privileges */
  service?: string
}

export type AclRequest =
  | { kind: 'kv'; op: 'read' | 'write'; key: string }
  | { kind: 'service'; op: 'discover' | 'register'; name: string }
  | { kind: 'operator'; op: 'read' | 'write' }

export interface AclDecision {
  allow: boolean
  /** the rule that decided, as a person reads it: `policy "web" kv "config/web/" read` */
  rule: string
}

interface Ranked {
  rule: AclRule
  /** where it came from: `policy "x"` or `built-in` */
  source: string
}

/** The rules that apply to one caller, ready for decisions (built once per request). */
export interface Acl {
  defaultPolicy: DefaultPolicy
  rules: Ranked[]
  /** an operator's token: the agents' own keys are governed by its rules, not refused outright */
  operator?: boolean
}

/** The access records as the store holds them: every policy that decodes, and the default (`allow` when absent). */
export function aclRecords(store: Pick<ReadableStore, 'list' | 'get'>): {
  policies: AclPolicyValue[]
  defaultPolicy: DefaultPolicy
} {
  const d = store.get(ACL_DEFAULT_KEY)
  return {
    policies: store.list(ACL_POLICY_PREFIX).flatMap((r) => aclPolicyCodec.valueOf(r) ?? []),
    defaultPolicy: (d && aclDefaultCodec.valueOf(d)?.policy) ?? 'allow',
  }
}

/** what an access grants, by strength: a rule for `write` also lets read, `register` also discover */
const STRENGTH = { deny: 0, read: 1, discover: 1, write: 2, register: 2 } as const

/**
 * The caller's rules: those of every policy bound to its service or its name
 * and, under a `deny` default, the built-in grants every container needs (read
 * `config/<own service>/` and `config/shared/`, register in its own service).
 * Under `allow` they would grant nothing and only narrow what the default
 * gives, so they are left out.
 */
export function aclFor(caller: AclCaller, policies: AclPolicyValue[], defaultPolicy: DefaultPolicy): Acl {
  const rules: Ranked[] = []
  if (defaultPolicy === 'deny')
    rules.push({ rule: { kv: 'config/shared/', access: 'read' }, source: 'built-in' })
  if (defaultPolicy === 'deny' && caller.service) {
    rules.push({ rule: { kv: `config/${caller.service}/`, access: 'read' }, source: 'built-in' })
    rules.push({ rule: { service: caller.service, access: 'register' }, source: 'built-in' })
  }
  for (const p of policies) {
    const bound =
      (caller.service !== undefined && p.services?.includes(caller.service)) ||
      p.containers?.includes(caller.name)
    if (bound) for (const rule of p.rules) rules.push({ rule, source: `policy "${p.name}"` })
  }
  return { defaultPolicy, rules }
}

/**
 * A token's rules: those of the policies it names. A token has exactly what
 * they grant (default deny whatever `acl/default` says): that default is for
 * containers, which had access before there were policies; a token is made
 * for a purpose.
 */
export function aclForToken(token: AclTokenValue, policies: AclPolicyValue[]): Acl {
  const rules: Ranked[] = []
  for (const p of policies)
    if (token.policies.includes(p.name))
      for (const rule of p.rules) rules.push({ rule, source: `policy "${p.name}"` })
  return { defaultPolicy: 'deny', rules, operator: true }
}

/** the prefix of the agent's own keys `key` falls under, if any */
export function agentKeyPrefix(key: string): string | undefined {
  return AGENT_KEY_PREFIXES.find((p) => key.startsWith(p))
}

/** how specific a rule is for the request (longer prefix = more specific), or -1 when it does not match */
function specificity(rule: AclRule, req: AclRequest): number {
  if ('kv' in rule) return req.kind === 'kv' && req.key.startsWith(rule.kv) ? rule.kv.length : -1
  if ('operator' in rule) return req.kind === 'operator' ? 0 : -1
  if (req.kind !== 'service') return -1
  if (rule.service === '*') return 0
  if (rule.service.endsWith('*')) {
    const prefix = rule.service.slice(0, -1)
    return req.name.startsWith(prefix) ? prefix.length : -1
  }
  // an exact name beats any prefix of it
  return req.name === rule.service ? rule.service.length + 1 : -1
}

/**
 * Between equally specific rules: a deny wins, so one policy cannot outvote
 * another's deny; else the wider grant, so a built-in read does not narrow a
 * policy's write of the same prefix.
 */
function outranks(a: AclRule, b: AclRule): boolean {
  if (accessOf(b) === 'deny') return false
  return accessOf(a) === 'deny' || STRENGTH[accessOf(a)] > STRENGTH[accessOf(b)]
}

const describe = (r: Ranked): string =>
  'kv' in r.rule
    ? `${r.source} kv "${r.rule.kv}" ${r.rule.access}`
    : 'operator' in r.rule
      ? `${r.source} operator ${r.rule.operator}`
      : `${r.source} service "${r.rule.service}" ${r.rule.access}`

/** what a rule grants or refuses */
const accessOf = (rule: AclRule): keyof typeof STRENGTH => ('operator' in rule ? rule.operator : rule.access)

/**
 * The decision on one request: the agent's own keys are never written by a
 * container (and `acl/` is not read); otherwise the most specific matching
 * rule decides (deny first among equals), and no match falls to the default.
 */
export function decide(acl: Acl, req: AclRequest): AclDecision {
  if (req.kind === 'kv' && !acl.operator) {
    const own = agentKeyPrefix(req.key)
    if (own && (req.op === 'write' || own === 'acl/'))
      return { allow: false, rule: `built-in: "${own}" is the agents' own, read-only to containers` }
  }
  let best: Ranked | undefined
  let bestAt = -1
  for (const r of acl.rules) {
    const at = specificity(r.rule, req)
    if (at < 0) continue
    if (at > bestAt || (at === bestAt && best && outranks(r.rule, best.rule))) {
      best = r
      bestAt = at
    }
  }
  if (!best) return { allow: acl.defaultPolicy === 'allow', rule: `default policy ${acl.defaultPolicy}` }
  const need = req.op === 'write' || req.op === 'register' ? 2 : 1
  return { allow: STRENGTH[accessOf(best.rule)] >= need, rule: describe(best) }
}

/**
 * Whether any key under `prefix` may be read: the prefix itself, or a more
 * specific rule below it that grants read (a listing then shows only those).
 */
export function mayReadSomeUnder(acl: Acl, prefix: string): AclDecision {
  const whole = decide(acl, { kind: 'kv', op: 'read', key: prefix })
  if (whole.allow) return whole
  const below = acl.rules.find(
    (r) =>
      'kv' in r.rule &&
      r.rule.kv.startsWith(prefix) &&
      r.rule.kv.length > prefix.length &&
      decide(acl, { kind: 'kv', op: 'read', key: r.rule.kv }).allow,
  )
  return below ? { allow: true, rule: describe(below) } : whole
}
