import { InvalidArgumentError } from 'commander'
import type { KvEntry as Entry, KvDeleteReply } from '../../api/contract/kv.js'
import { PlexusError } from '../../lib/errors.js'
import { isSealed, openValue, sealValue } from '../../lib/sealed.js'
import type { CliContext, RegisterCommand } from '../context.js'
import { json, table } from '../output.js'
import { readSecretKeyFile, resolvePublicKey } from '../seal-keys.js'

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

/** PUT a value, with ?ttl and ?cas when given */
async function put(
  ctx: CliContext,
  key: string,
  value: unknown,
  o: { ttl?: string; cas?: number },
): Promise<Entry> {
  const q = new URLSearchParams()
  if (o.ttl) q.set('ttl', o.ttl)
  if (o.cas !== undefined) q.set('cas', String(o.cas))
  const qs = q.size ? `?${q}` : ''
  return ctx.client().call<Entry>('PUT', `${keyPath(key)}${qs}`, value)
}

const printPut = (ctx: CliContext, e: Entry) =>
  ctx.print(ctx.format() === 'json' ? json(e) : `${e.key} (index ${e.modifyIndex})\n`)

/** the opened value of a sealed entry; a plain one is an error, not silently printed as if opened */
function unseal(e: Entry, secretKey: Uint8Array): unknown {
  if (!isSealed(e.value)) throw new PlexusError('PLX_SEAL_NOT_SEALED', `${e.key} is not a sealed value`)
  return openValue(e.value, secretKey)
}

export const registerKv: RegisterCommand = (program, ctx) => {
  const kv = program.command('kv').description('read and write the replicated key-value store')

  kv.command('get')
    .description('print a value (with --recurse: every key under a prefix)')
    .argument('<key>')
    .option('-r, --recurse', 'treat key as a prefix')
    .option('--unseal <keyfile>', 'open a sealed value with this private key (not with --recurse)')
    .action(async (key: string, o: { recurse?: boolean; unseal?: string }) => {
      if (o.unseal && o.recurse)
        throw new PlexusError('PLX_SEAL_USAGE', '--unseal opens one key, not a prefix')
      const res = await ctx
        .client()
        .call<Entry | Entry[]>('GET', `${keyPath(key)}${o.recurse ? '?recurse' : ''}`)
      if (o.unseal && !Array.isArray(res)) {
        const value = unseal(res, await readSecretKeyFile(o.unseal))
        return ctx.print(ctx.format() === 'json' ? json({ ...res, value }) : `${show(value)}\n`)
      }
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
    .option(
      '--seal-to <key>',
      'encrypt here to a public key (NAME in the key dir, a .pub file, or the key text): the agent stores only ciphertext',
    )
    .action(async (key: string, value: string, o: { ttl?: string; cas?: number; sealTo?: string }) => {
      const v = parseValue(value)
      printPut(ctx, await put(ctx, key, o.sealTo ? sealValue(v, await resolvePublicKey(o.sealTo)) : v, o))
    })

  kv.command('reseal')
    .description(
      'rotate a sealed value to another key: open it with --unseal, seal it --seal-to the new key, written only if unchanged meanwhile',
    )
    .argument('<key>')
    .requiredOption('--unseal <keyfile>', 'the private key that opens it now')
    .requiredOption('--seal-to <key>', 'the new public key (NAME, .pub file or key text)')
    .action(async (key: string, o: { unseal: string; sealTo: string }) => {
      const e = await ctx.client().call<Entry>('GET', keyPath(key))
      const value = unseal(e, await readSecretKeyFile(o.unseal))
      const left = e.expiresAt ? Date.parse(e.expiresAt) - Date.now() : undefined
      if (left !== undefined && left <= 0)
        throw new PlexusError('PLX_SEAL_EXPIRED', `${key} expired while being resealed`)
      const next = sealValue(value, await resolvePublicKey(o.sealTo))
      // cas: a write between our read and this one fails instead of being overwritten
      printPut(
        ctx,
        await put(ctx, key, next, { cas: e.modifyIndex, ...(left ? { ttl: `${Math.ceil(left)}ms` } : {}) }),
      )
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
