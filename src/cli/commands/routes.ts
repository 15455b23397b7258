import type { RoutesReply } from '../../api/contract/routes.js'
import type { CliContext, RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

export const registerRoutes: RegisterCommand = (program, ctx) => {
  program
    .command('routes')
    .description('overlay routes: desired vs programmed, refused remote hosts, drift repaired')
    .action(async () => {
      const r = await ctx.client().call<RoutesReply>('GET', '/v1/routes')
      if (ctx.format() === 'json') return ctx.print(json(r))
      const fw = `${r.firewall.backend}${r.firewall.variant ? ` (${r.firewall.variant})` : ''}`
      ctx.print(
        `datapath: ${r.state}${r.reason ? ` (${r.reason})` : ''}; backend ${r.backend ?? '-'}, subnet ${r.subnet ?? '-'}, MTU ${r.mtu ?? '-'}, firewall ${fw}\n\n`,
      )
      ctx.print(
        table(
          ['destination', 'via', 'dev', 'host', 'mode', 'desired', 'programmed'],
          r.routes.map((x) => [
            x.dst,
            `${x.gateway}${x.onlink ? ' onlink' : ''}`,
            x.dev,
            x.host,
            x.mode,
            'yes',
            x.programmed ? 'yes' : 'NO',
          ]),
        ),
      )
      const refused = r.remotes.filter((x) => x.mode === 'refused')
      if (refused.length) {
        ctx.print(`\nrefused remote hosts (${refused.length}):\n`)
        ctx.print(
          table(
            ['host', 'subnet', 'address', 'reason'],
            refused.map((x) => [x.host, x.subnet, x.publicIp, x.reason]),
          ),
        )
      }
      if (r.wireguard) printWireguard(ctx, r.wireguard)
      const kinds = Object.entries(r.repairs).filter(([k]) => k !== 'total')
      ctx.print(
        `\ndrift repaired: ${r.repairs.total ?? 0}${kinds.length ? ` (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}\n`,
      )
      if (r.lastPass) {
        ctx.print(
          `last pass: ${r.lastPass.at}, ${r.lastPass.durationMs} ms, ${r.lastPass.changes} change(s), ${r.passes} passes\n`,
        )
        for (const f of r.lastPass.failed) ctx.print(`  failed: ${f.change}: ${f.error}\n`)
      }
    })
}

/** the device process, this host's key (and the next one while a rotation runs) and one row per peer */
function printWireguard(ctx: CliContext, wg: NonNullable<RoutesReply['wireguard']>): void {
  const proc = wg.pid === undefined ? 'not running' : `pid ${wg.pid}${wg.adopted ? ' (adopted)' : ''}`
  ctx.print(
    `\nWireGuard ${wg.ifname} (${wg.implementation}, ${proc}, ${wg.restarts} restart(s)), port ${wg.listenPort ?? '-'}, key ${wg.publicKey ?? '-'}${wg.keyGeneration === undefined ? '' : ` (generation ${wg.keyGeneration})`}${wg.nextPublicKey ? `, next key ${wg.nextPublicKey} (rotating)` : ''}\n`,
  )
  const ago = (sec: number) =>
    sec === 0 ? 'never' : `${Math.max(0, Math.round(Date.now() / 1000 - sec))} s ago`
  ctx.print(
    table(
      ['peer key', 'endpoint', 'allowed IPs', 'handshake', 'rx bytes', 'tx bytes'],
      wg.peers.map((p) => [
        p.publicKey,
        p.endpoint,
        p.allowedIps.join(', ') || '-',
        ago(p.lastHandshake),
        p.rxBytes,
        p.txBytes,
      ]),
    ),
  )
}
