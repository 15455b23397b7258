import { InvalidArgumentError } from 'commander'
import type { KvEntry as Entry, KvDeleteReply } from '../../api/contract/kv.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

/** a key or prefix as a path below /v1/kv/ or /v1/watch/: each segment escaped, the slashes kept */
export const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/')
const keyPath = (key: string) => `/v1/kv/${encodeKey(key)}`
const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

/** A value on the command line: JSON if it parses, else the text as a string (`plexctl kv put k hello`). */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function intArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer')
  return Number(v)
}

export const registerKv: RegisterCommand = (program, ctx) => {
  const kv = program.command('kv').description('read and write the replicated key-value store')

  kv.command('get')
    .description('print a value (with --recurse: every key under a prefix)')
    .argument('<key>')
    .option('-r, --recurse', 'treat key as a prefix')
    .action(async (key: string, o: { recurse?: boolean }) => {
      const res = await ctx
        .client()
        .call<Entry | Entry[]>('GET', `${keyPath(key)}${o.recurse ? '?recurse' : ''}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      if (Array.isArray(res))
        return ctx.print(
          table(
            ['key', 'value'],
            res.map((e) => [e.key, show(e.value)]),
          ),
        )
      ctx.print(`${show(res.value)}\n`)
    })

  kv.command('put')
    .description('write a value (JSON, or plain text stored as a string)')
    .argument('<key>')
    .argument('<value>')
    .option('--ttl <duration>', 'expire after this long (e.g. 30s, 5m)')
    .option(
      '--cas <index>',
      'only write if the key is still at this modify index (0: must not exist)',
      intArg,
    )
    .action(async (key: string, value: string, o: { ttl?: string; cas?: number }) => {
      const q = new URLSearchParams()
      if (o.ttl) q.set('ttl', o.ttl)
      if (o.cas !== undefined) q.set('cas', String(o.cas))
      const qs = q.size ? `?${q}` : ''
      const e = await ctx.client().call<Entry>('PUT', `${keyPath(key)}${qs}`, parseValue(value))
      ctx.print(ctx.format() === 'json' ? json(e) : `${e.key} (index ${e.modifyIndex})\n`)
    })

  kv.command('rm')
    .description('delete a key (with --recurse: every key under a prefix this host may delete)')
    .argument('<key>')
    .option('-r, --recurse', 'treat key as a prefix')
    .option('--cas <index>', 'only delete if the key is still at this modify index', intArg)
    .action(async (key: string, o: { recurse?: boolean; cas?: number }) => {
      const q = o.recurse ? '?recurse' : o.cas !== undefined ? `?cas=${o.cas}` : ''
      const r = await ctx.client().call<KvDeleteReply>('DELETE', `${keyPath(key)}${q}`)
      if (ctx.format() === 'json') return ctx.print(json(r))
      ctx.print(
        `deleted ${r.deleted}${r.skipped.length ? `, skipped (owned by other hosts): ${r.skipped.join(' ')}` : ''}\n`,
      )
    })

  kv.command('ls')
    .description('list keys under a prefix')
    .argument('[prefix]', 'key prefix', '')
    .action(async (prefix: string) => {
      const res = await ctx.client().call<Entry[]>('GET', `${keyPath(prefix)}?recurse`)
      if (ctx.format() === 'json') return ctx.print(json(res.map((e) => e.key)))
      ctx.print(
        table(
          ['key', 'owner', 'index', 'expires'],
          res.map((e) => [e.key, e.owner, e.modifyIndex, e.expiresAt]),
        ),
      )
    })

  kv.command('watch')
    .description('print the value(s) now and again on every change (blocking queries)')
    .argument('<key>')
    .option('-r, --recurse', 'watch every key under a prefix')
    .action(async (key: string, o: { recurse?: boolean }) => {
      const client = ctx.client()
      let index = 0
      let last: string | undefined
      for (;;) {
        // prefix queries answer [] instead of 404, so a missing key blocks like any other
        const q = new URLSearchParams({ recurse: '', index: String(index), wait: '5m' })
        const all = await client.call<Entry[]>('GET', `${keyPath(key)}?${q}`, undefined, {
          timeoutMs: 6 * 60_000,
        })
        const entries = o.recurse ? all : all.filter((e) => e.key === key)
        index = Math.max(index, ...all.map((e) => e.modifyIndex))
        const state = JSON.stringify(entries.map((e) => [e.key, e.value]))
        if (state === last) continue
        last = state
        const stamp = new Date().toISOString()
        if (ctx.format() === 'json') ctx.print(`${JSON.stringify({ time: stamp, entries })}\n`)
        else if (entries.length === 0) ctx.print(`${stamp} ${key}: (none)\n`)
        else for (const e of entries) ctx.print(`${stamp} ${e.key} = ${show(e.value)}\n`)
      }
    })
}
