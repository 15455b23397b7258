// A task's `templates` block: files rendered from the store into the task's
// directory, as consul-template renders them and Nomad's template block does
// for a task, on the engine of `plexctl template` (src/lib/template.ts). This
// module is pure: what the templates read, the data they get from the store
// and the catalog, and the rendered files. service.ts writes them and applies
// each template's changeMode.
import {
  compileTemplate,
  type Dependencies,
  instanceOf,
  type Template,
  type TemplateData,
  treeOf,
  watchPrefixes,
} from '../lib/template.js'
import type { TaskSpec, TaskTemplate } from '../scheduler/spec.js'
import type { Catalog } from '../services/catalog.js'
import { nearestFirst } from '../services/near.js'
import type { StoreRecord } from '../store/types.js'

/** the directory under a task's own (TaskLaunch.dir) that its templates are rendered into */
export const TEMPLATE_DIR = 'local'
/** where a task with its own root (a rootfs, an image) sees that directory */
export const TASK_LOCAL_MOUNT = '/local'

export interface CompiledTemplate {
  spec: TaskTemplate
  template: Template
}

/** A job's templates compiled once per text, not on every pass; bounded (old job versions drop out). */
const compiled = new Map<string, Template>()
const COMPILED_MAX = 256

/** the task's templates, compiled (the scheduler refused any that does not compile when the job was submitted) */
export function taskTemplates(spec: TaskSpec): CompiledTemplate[] {
  return (spec.templates ?? []).map((t, i) => {
    let template = compiled.get(t.data)
    if (!template) {
      template = compileTemplate(t.data, `task ${spec.name} template ${i} (${t.dest})`)
      if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value!)
      compiled.set(t.data, template)
    }
    return { spec: t, template }
  })
}

/** everything a task's templates read, together */
export function dependenciesOf(ts: CompiledTemplate[]): Dependencies {
  const all = (k: keyof Dependencies) => [...new Set(ts.flatMap((t) => t.template.dependencies[k]))].sort()
  return { keys: all('keys'), trees: all('trees'), services: all('services') }
}

/** the store prefixes whose changes can change what the task's templates render */
export const templatePrefixes = (ts: CompiledTemplate[]): string[] => watchPrefixes(dependenciesOf(ts))

/** What the templates read, from the store as it is now: KV values as stored, healthy service members nearest first. */
export function templateData(
  deps: Dependencies,
  store: { get(key: string): StoreRecord | undefined; list(prefix: string): StoreRecord[] },
  catalog: () => Catalog,
  self: string,
): TemplateData {
  const data: TemplateData = { keys: new Map(), trees: new Map(), services: new Map() }
  for (const k of deps.keys) {
    const r = store.get(k)
    if (r) data.keys.set(k, r.value)
  }
  for (const p of deps.trees) data.trees.set(p, treeOf(p, store.list(p)))
  if (deps.services.length) {
    const c = catalog()
    for (const s of deps.services) {
      const healthy = (c.services.get(s)?.members ?? []).filter((m) => m.healthy)
      data.services.set(s, nearestFirst(healthy, c.nodes, self).map(instanceOf))
    }
  }
  return data
}

/** a template's file mode: perms as octal, 0644 by default */
export const templateMode = (t: TaskTemplate): number => Number.parseInt(t.perms ?? '644', 8)

/**
 * Every file of the task rendered from data: dest → content. Throws the
 * engine's typed error (PLX_TEMPLATE_MISSING_KEY names the key and template):
 * a task whose template cannot render does not start, and a running one keeps
 * the file it has.
 */
export function renderTemplates(ts: CompiledTemplate[], data: TemplateData): Map<string, string> {
  return new Map(ts.map((t) => [t.spec.dest, t.template.render(data)]))
}

/**
 * What the changed files ask of the running task, the strongest first: a
 * restart if any changed file's template says so, else the signals to send
 * (each once), else nothing.
 */
export function changeAction(
  ts: CompiledTemplate[],
  changed: Set<string>,
): { kind: 'restart' } | { kind: 'signal'; signals: string[] } | { kind: 'none' } {
  const hit = ts.filter((t) => changed.has(t.spec.dest))
  if (hit.some((t) => (t.spec.changeMode ?? 'restart') === 'restart')) return { kind: 'restart' }
  const signals = [
    ...new Set(hit.filter((t) => t.spec.changeMode === 'signal').map((t) => t.spec.signal ?? 'SIGHUP')),
  ]
  return signals.length ? { kind: 'signal', signals } : { kind: 'none' }
}
