// plexctl template: a file rendered from KV values and the healthy instances
// of services, rendered again when they change (confd, consul-template).
// The pure parts are in ../template/: the engine and what a template reads
// (engine.ts), when to render (wait.ts); the watch streams in watch.ts.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { InvalidArgumentError, Option } from 'commander'
import type { KvEntry } from '../../api/contract/kv.js'
import type { ServiceMember } from '../../api/contract/services.js'
import { isPlexusError, PlexusError } from '../../lib/errors.js'
import { writeFileAtomic } from '../../lib/fs.js'
import {
  compileTemplate,
  type Dependencies,
  instanceOf,
  type TemplateData,
  treeOf,
  watchPrefixes,
} from '../../lib/template.js'
import { type ApiClient, ApiError } from '../client.js'
import type { RegisterCommand } from '../context.js'
import { DEFAULT_WAIT, Pending, parseWait, type Wait } from '../template/wait.js'
import { watchPrefix } from '../template/watch.js'
import { encodeKey } from './kv.js'

interface TemplateOptions {
  source: string
  dest: string
  exec?: string
  once?: boolean
  wait: Wait
}

/** a render that failed for a reason a retry may cure (the agent restarting) is tried again after this */
const RETRY_MS = 1000

const log = (message: string): void => {
  process.stderr.write(`plexctl template: ${message}\n`)
}

/** Everything the template reads, fetched now: keys (a missing one is left out), trees, healthy instances nearest first. */
async function fetchData(client: ApiClient, d: Dependencies): Promise<TemplateData> {
  const data: TemplateData = { keys: new Map(), trees: new Map(), services: new Map() }
  await Promise.all([
    ...d.keys.map(async (k) => {
      try {
        data.keys.set(k, (await client.call<KvEntry>('GET', `/v1/kv/${encodeKey(k)}`)).value)
      } catch (err) {
        // the template fails naming the key if (and where) it reads it
        if (!(err instanceof ApiError && err.status === 404)) throw err
      }
    }),
    ...d.trees.map(async (p) =>
      data.trees.set(p, treeOf(p, await client.call<KvEntry[]>('GET', `/v1/kv/${encodeKey(p)}?recurse`))),
    ),
    ...d.services.map(async (s) => {
      const members = await client.call<ServiceMember[]>(
        'GET',
        `/v1/health/service/${encodeURIComponent(s)}?passing&near=_agent`,
      )
      data.services.set(s, members.map(instanceOf))
    }),
  ])
  return data
}

/** Writes `text` to `dest` atomically (same directory, rename; its mode kept) unless it holds that already. */
async function writeIfChanged(dest: string, text: string): Promise<boolean> {
  let mode = 0o644
  try {
    const [current, st] = await Promise.all([readFile(dest, 'utf8'), stat(dest)])
    if (current === text) return false
    mode = st.mode & 0o7777
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await writeFileAtomic(dest, text, mode)
  return true
}

function runExec(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'inherit', 'inherit'] })
    child.once('error', reject)
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new PlexusError('PLX_TEMPLATE_EXEC', `--exec "${command}" failed (${signal ?? `exit ${code}`})`),
          ),
    )
  })
}

async function runTemplate(client: ApiClient, o: TemplateOptions): Promise<void> {
  const template = compileTemplate(readFileSync(o.source, 'utf8'), o.source)
  const renderOnce = async (): Promise<void> => {
    const text = template.render(await fetchData(client, template.dependencies))
    const changed = await writeIfChanged(o.dest, text)
    log(`rendered ${o.dest} (${changed ? 'changed' : 'unchanged'})`)
    if (changed && o.exec) await runExec(o.exec)
  }
  const prefixes = watchPrefixes(template.dependencies)
  if (o.once || prefixes.length === 0) return renderOnce()

  const stop = new AbortController()
  let fatal: unknown
  const fail = (err: unknown): void => {
    fatal ??= err
    stop.abort()
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort())

  // renders never overlap; changes during one wait for the next, which `wait` times
  const pending = new Pending(o.wait)
  let started = false
  let rendering = false
  let timer: NodeJS.Timeout | undefined
  const schedule = (at: number | undefined): void => {
    clearTimeout(timer)
    if (at !== undefined && !stop.signal.aborted) timer = setTimeout(fire, Math.max(0, at - Date.now()))
  }
  const fire = async (): Promise<void> => {
    if (rendering || !pending.take(Date.now())) return schedule(rendering ? undefined : pending.due())
    rendering = true
    try {
      await renderOnce()
    } catch (err) {
      if (isPlexusError(err, 'PLX_TEMPLATE_EXEC')) log(`${err.message}; the file is written`)
      // a missing key, a template that does not render, a file that cannot be written: loudly, and stop
      else if (isPlexusError(err)) fail(err)
      else {
        // the agent restarting, or refusing for a while: the watches come back by themselves
        log(`render failed, retrying in ${RETRY_MS} ms: ${(err as Error).message}`)
        pending.change(Date.now() + RETRY_MS)
      }
    } finally {
      rendering = false
      schedule(pending.due())
    }
  }
  const change = (): void => {
    if (started) schedule(pending.change(Date.now()))
  }

  let unsynced = prefixes.length
  const watches = prefixes.map((prefix) =>
    watchPrefix(client, prefix, stop.signal, {
      onSynced: () => {
        // the first render reads after every stream caught up: no change falls between them
        if (--unsynced > 0) return
        started = true
        // a change that is due at once (its bound, MAX, is already over)
        schedule(pending.change(Date.now() - o.wait.maxMs))
      },
      onChange: change,
      log,
    }).catch(fail),
  )
  await Promise.all(watches)
  clearTimeout(timer)
  if (fatal) throw fatal
}

export const registerTemplate: RegisterCommand = (program, ctx) => {
  program
    .command('template')
    .description(
      'render a file from KV values and healthy service instances, and again on every change (as confd and consul-template)',
    )
    .requiredOption('--source <file>', 'the template (Handlebars; helpers key, tree, service, json)')
    .requiredOption('--dest <file>', 'the file to write (atomically, its mode kept)')
    .option('--exec <command>', 'run with sh -c after each write that changed the file (a reload)')
    .option('--once', 'render once and exit')
    .addOption(
      new Option(
        '--wait <min:max>',
        'after a change, render once nothing changed for MIN, at the latest MAX after the first change',
      )
        .default(DEFAULT_WAIT, '250ms:1s')
        .argParser((v: string) => {
          try {
            return parseWait(v)
          } catch (err) {
            throw new InvalidArgumentError((err as Error).message)
          }
        }),
    )
    .action((o: TemplateOptions) => runTemplate(ctx.client(), o))
}
