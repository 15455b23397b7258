// The effects of tasks' `templates` blocks (templates.ts is the pure part):
// the rendered files written into each task's directory when their content
// changes, and store watches on exactly the prefixes the templates read, so a
// change there brings the runner's next pass forward (debounced).
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import type { TaskSpec } from '../scheduler/spec.js'
import { buildCatalog, catalogInput } from '../services/catalog.js'
import type { ReadableStore } from '../store/types.js'
import {
  dependenciesOf,
  renderTemplates,
  TEMPLATE_DIR,
  taskTemplates,
  templateData,
  templateMode,
} from './templates.js'

export class TemplateFiles {
  private dirty = false
  private readonly watches = new Map<string, () => void>()

  constructor(
    private readonly store: ReadableStore,
    private readonly self: string,
    /** a change under a watched prefix: the runner schedules a pass */
    private readonly onChange: () => void,
    /** plexus_runner_template_renders_total */
    private readonly renders: { inc(labels: { result: 'changed' | 'unchanged' | 'failed' }): void },
  ) {}

  /** the directory a task's templates are rendered into, under its own (TaskLaunch.dir) */
  static dir(taskDir: string): string {
    return join(taskDir, TEMPLATE_DIR)
  }

  /** whether something the templates read changed since the last call (the pass renders running tasks' again) */
  takeDirty(): boolean {
    const d = this.dirty
    this.dirty = false
    return d
  }

  /**
   * Renders every template of the task from the store as it is now and writes
   * the files whose content differs (atomically: a reader never sees half a
   * file). Returns the dests written. Throws the engine's typed error when a
   * template cannot render (a missing key): nothing is written then.
   */
  async write(spec: TaskSpec, taskDir: string): Promise<Set<string>> {
    const ts = taskTemplates(spec)
    const changed = new Set<string>()
    if (!ts.length) return changed
    let files: Map<string, string>
    try {
      const data = templateData(
        dependenciesOf(ts),
        this.store,
        () => buildCatalog(catalogInput(this.store)),
        this.self,
      )
      files = renderTemplates(ts, data)
    } catch (err) {
      this.renders.inc({ result: 'failed' })
      throw err
    }
    const dir = TemplateFiles.dir(taskDir)
    for (const t of ts) {
      const path = join(dir, t.spec.dest)
      const text = files.get(t.spec.dest)!
      if ((await readFile(path, 'utf8').catch(() => undefined)) === text) continue
      await mkdir(dirname(path), { recursive: true })
      await writeFileAtomic(path, text, templateMode(t.spec))
      changed.add(t.spec.dest)
    }
    this.renders.inc({ result: changed.size ? 'changed' : 'unchanged' })
    return changed
  }

  /** watches exactly these prefixes from now on (the templates of the tasks this host runs) */
  watch(prefixes: Iterable<string>): void {
    const want = new Set(prefixes)
    for (const [p, cancel] of this.watches)
      if (!want.has(p)) {
        cancel()
        this.watches.delete(p)
      }
    for (const p of want)
      if (!this.watches.has(p))
        this.watches.set(
          p,
          this.store.watch(p, () => {
            this.dirty = true
            this.onChange()
          }),
        )
  }

  stop(): void {
    this.watch([])
  }
}
