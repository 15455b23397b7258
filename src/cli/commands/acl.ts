import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import type { AclDefault, AclPolicy, AclToken, AclTokenCreated } from '../../api/contract/acl.js'
import type { RegisterCommand } from '../context.js'
import { collect, json, table } from '../output.js'

const enc = encodeURIComponent

/** one rule as a table cell: `kv "config/web/" write`, `service "web*" discover`, `operator read` */
const rule = (r: AclPolicy['rules'][number]): string =>
  'kv' in r
    ? `kv "${r.kv}" ${r.access}`
    : 'operator' in r
      ? `operator ${r.operator}`
      : `service "${r.service}" ${r.access}`

export const registerAcl: RegisterCommand = (program, ctx) => {
  const acl = program
    .command('acl')
    .description('who may do what on the application API: policies and the default (src/services/README.md)')

  acl
    .command('default')
    .description('show the default policy, or set it: allow (no rule needed) or deny (the secure setting)')
    .argument('[policy]', 'allow or deny')
    .action(async (policy?: string) => {
      const res = policy
        ? await ctx.client().call<AclDefault>('PUT', '/v1/acl/default', { policy })
        : await ctx.client().call<AclDefault>('GET', '/v1/acl/default')
      ctx.print(ctx.format() === 'json' ? json(res) : `default policy: ${res.policy}\n`)
    })

  const policy = acl.command('policy').description('access policies bound to services or containers')

  policy
    .command('put')
    .description('create or replace a policy from a YAML or JSON file (its `name` names it)')
    .argument('<file>', 'the policy (- for stdin)')
    .action(async (file: string) => {
      const text = await readFile(file === '-' ? '/dev/stdin' : file, 'utf8')
      let body: { name?: unknown }
      try {
        body = parse(text)
      } catch (err) {
        throw new Error(`${file}: not YAML or JSON (${(err as Error).message})`)
      }
      if (typeof body?.name !== 'string') throw new Error(`${file}: a policy needs a name`)
      const res = await ctx.client().call<AclPolicy>('PUT', `/v1/acl/policies/${enc(body.name)}`, body)
      ctx.print(ctx.format() === 'json' ? json(res) : `policy ${res.name} set\n`)
    })

  policy
    .command('ls')
    .description('list the policies')
    .action(async () => {
      const res = await ctx.client().call<AclPolicy[]>('GET', '/v1/acl/policies')
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['name', 'services', 'containers', 'rules'],
          res.map((p) => [
            p.name,
            p.services?.join(','),
            p.containers?.join(','),
            p.rules.map(rule).join('; '),
          ]),
        ),
      )
    })

  policy
    .command('get')
    .description('show one policy')
    .argument('<name>')
    .action(async (name: string) => {
      ctx.print(json(await ctx.client().call<AclPolicy>('GET', `/v1/acl/policies/${enc(name)}`)))
    })

  policy
    .command('rm')
    .description('delete a policy')
    .argument('<name>')
    .action(async (name: string) => {
      await ctx.client().call('DELETE', `/v1/acl/policies/${enc(name)}`)
      if (ctx.format() !== 'json') ctx.print(`policy ${name} deleted\n`)
    })

  const token = acl
    .command('token')
    .description('tokens of the TCP operator API (api.listen), each carrying policies')

  token
    .command('create')
    .description('make a token; its secret is printed once (the store keeps only a hash)')
    .argument('<name>')
    .requiredOption('--policy <name>', 'a policy it carries (repeatable)', collect, [] as string[])
    .action(async (name: string, o: { policy: string[] }) => {
      const res = await ctx
        .client()
        .call<AclTokenCreated>('POST', '/v1/acl/tokens', { name, policies: o.policy })
      ctx.print(ctx.format() === 'json' ? json(res) : `${res.secret}\n`)
    })

  token
    .command('ls')
    .description('list the tokens (never their secrets)')
    .action(async () => {
      const res = await ctx.client().call<AclToken[]>('GET', '/v1/acl/tokens')
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['name', 'policies', 'created'],
          res.map((t) => [t.name, t.policies.join(','), t.createdAt]),
        ),
      )
    })

  token
    .command('rm')
    .description('delete a token: requests with it get 401 from then on')
    .argument('<name>')
    .action(async (name: string) => {
      await ctx.client().call('DELETE', `/v1/acl/tokens/${enc(name)}`)
      if (ctx.format() !== 'json') ctx.print(`token ${name} deleted\n`)
    })
}
