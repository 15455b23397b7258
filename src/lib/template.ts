// The template language of `plexctl template` and of a job task's `templates`
// (Handlebars, strict): what a template reads (found in its syntax tree before
// anything is fetched) and the rendering of it from data already fetched.
// Pure: no I/O here. On the ground floor so plexctl (from the API), the
// scheduler (a job's templates are checked at submission) and the runner
// (from the store) share one engine.
//
// Handlebars is logic-less: a template can call only the helpers given to it
// (`knownHelpersOnly`), data is never evaluated, and `strict` makes a missing
// field an error instead of an empty string. Why this engine: src/cli/README.md.
import Handlebars from 'handlebars'
import { PlexusError } from './errors.js'

/** a port of a service member (src/store/records.ts PortSpec) */
interface Port {
  name?: string
  port: number
  protocol: string
}

/** a service member as the catalog and the API give it */
export interface MemberLike {
  name: string
  ipv4: string
  ports: Port[]
  host: string
  tags: string[]
  endpointKey: string
}

/** What a template reads: KV keys, KV prefixes (`tree`) and services, each named by a string literal. */
export interface Dependencies {
  keys: string[]
  trees: string[]
  services: string[]
}

/** one healthy instance of a service as a template sees it */
export interface Instance {
  /** the container's name */
  name: string
  address: string
  /** the first of its ports; absent when it has none, so `{{port}}` fails loudly (strict) */
  port?: number
  ports: Port[]
  /** the name of the host it runs on */
  host: string
  tags: string[]
  id: string
}

/**
 * one key under a `tree` prefix: its name relative to the prefix, the full key and the value
 * (not `key`: inside a template that is the helper)
 */
export interface TreeEntry {
  name: string
  path: string
  value: unknown
}

/** What the helpers read, fetched for the Dependencies; a key absent from `keys` does not exist. */
export interface TemplateData {
  keys: Map<string, unknown>
  trees: Map<string, TreeEntry[]>
  services: Map<string, Instance[]>
}

/** the helpers that read the store, each with one string-literal argument */
const DATA_HELPERS = { key: 'keys', tree: 'trees', service: 'services' } as const
type DataHelper = keyof typeof DATA_HELPERS
const isDataHelper = (name: string): name is DataHelper => Object.hasOwn(DATA_HELPERS, name)

export interface Template {
  readonly dependencies: Dependencies
  render(data: TemplateData): string
}

type Node = { type?: string; loc?: { start: { line: number } } } & Record<string, unknown>

/** every node of a Handlebars syntax tree, depth first */
function* nodes(value: unknown): Generator<Node> {
  if (Array.isArray(value)) for (const v of value) yield* nodes(v)
  else if (value && typeof value === 'object') {
    const n = value as Node
    if (typeof n.type === 'string') yield n
    for (const [k, v] of Object.entries(n)) if (k !== 'loc') yield* nodes(v)
  }
}

/**
 * The keys, prefixes and services a parsed template reads (pure). Their
 * arguments must be string literals, so everything a template can depend on is
 * known before it renders: what to fetch, and which prefixes to watch.
 */
export function dependenciesOf(ast: hbs.AST.Program, name: string): Dependencies {
  const found = { keys: new Set<string>(), trees: new Set<string>(), services: new Set<string>() }
  for (const n of nodes(ast)) {
    const path = n.path as hbs.AST.PathExpression | undefined
    if (path?.type !== 'PathExpression' || !isDataHelper(path.original)) continue
    const params = (n.params ?? []) as hbs.AST.Expression[]
    const arg = params[0] as hbs.AST.StringLiteral | undefined
    if (params.length !== 1 || arg?.type !== 'StringLiteral' || arg.value === '')
      throw new PlexusError(
        'PLX_TEMPLATE_BAD_CALL',
        `${name}:${n.loc?.start.line ?? '?'}: ${path.original} takes one quoted, non-empty name, e.g. ${path.original} "${path.original === 'service' ? 'web' : 'config/web/'}"`,
      )
    found[DATA_HELPERS[path.original]].add(arg.value)
  }
  return {
    keys: [...found.keys].sort(),
    trees: [...found.trees].sort(),
    services: [...found.services].sort(),
  }
}

/** Parses and compiles a template; `name` (its file) is in every error. Throws PLX_TEMPLATE_SYNTAX. */
export function compileTemplate(source: string, name: string): Template {
  let ast: hbs.AST.Program
  try {
    ast = Handlebars.parse(source)
  } catch (err) {
    throw new PlexusError('PLX_TEMPLATE_SYNTAX', `${name}: ${(err as Error).message}`)
  }
  const dependencies = dependenciesOf(ast, name)
  // an AST is compiled to code: this one comes from the operator's template file, never from data
  const compiled = Handlebars.create().compile(ast, {
    strict: true,
    noEscape: true,
    knownHelpers: { key: true, tree: true, service: true, json: true },
    knownHelpersOnly: true,
  })
  return {
    dependencies,
    render(data: TemplateData): string {
      const line = (o: { loc?: { start: { line: number } } }) => `${name}:${o.loc?.start.line ?? '?'}`
      const helpers = {
        key(k: string, o: { loc?: { start: { line: number } } }) {
          if (!data.keys.has(k))
            throw new PlexusError('PLX_TEMPLATE_MISSING_KEY', `${line(o)}: key "${k}" does not exist`)
          return data.keys.get(k)
        },
        tree: (prefix: string) => data.trees.get(prefix) ?? [],
        service: (svc: string) => data.services.get(svc) ?? [],
        /** a value as JSON (objects and arrays from `key` or `tree`) */
        json: (v: unknown) => JSON.stringify(v),
      }
      try {
        return compiled({}, { helpers })
      } catch (err) {
        if (err instanceof PlexusError) throw err
        // strict mode's "x" not defined, a helper missing from knownHelpersOnly…
        throw new PlexusError('PLX_TEMPLATE_RENDER', `${name}: ${(err as Error).message}`)
      }
    },
  }
}

/** A KV listing under a prefix as `tree` shows it: names relative to the prefix, in key order (pure). */
export function treeOf(prefix: string, entries: { key: string; value: unknown }[]): TreeEntry[] {
  return entries
    .map((e) => ({ name: e.key.slice(prefix.length), path: e.key, value: e.value }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** A service member as `service` shows it (pure). */
export function instanceOf(m: MemberLike): Instance {
  return {
    name: m.name,
    address: m.ipv4,
    ...(m.ports[0] ? { port: m.ports[0].port } : {}),
    ports: m.ports,
    host: m.host,
    tags: m.tags,
    id: m.endpointKey,
  }
}

/**
 * The store prefixes whose changes can change what a template renders (pure):
 * each key and tree prefix, and for services the records the catalog is built
 * from (src/services/catalog.ts). Prefixes covered by a shorter one are
 * dropped: one watch stream each.
 */
export function watchPrefixes(d: Dependencies): string[] {
  const all = [
    ...d.keys,
    ...d.trees,
    ...(d.services.length ? ['endpoints/', 'registrations/', 'health/'] : []),
    ...d.services.map((s) => `services/${s}`),
  ].sort()
  return all.filter((p, i) => !all.slice(0, i).some((q) => p.startsWith(q)))
}
