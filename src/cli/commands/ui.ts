import { InvalidArgumentError } from 'commander'
import type { StatusReply } from '../../api/contract/status.js'
import type { RegisterCommand } from '../context.js'
import { startUiProxy } from '../ui-proxy.js'

function portNumber(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n > 65535)
    throw new InvalidArgumentError('a port number 0-65535 (0: any free port)')
  return n
}

export const registerUi: RegisterCommand = (program, ctx) => {
  program
    .command('ui')
    .description(
      'open the web UI: a loopback port forwarded to the agent socket, or with -H to a remote agent with its token (runs until interrupted)',
    )
    .option('-p, --port <n>', 'local TCP port (0: any free port)', portNumber, 0)
    .action(async (opts: { port: number }) => {
      const client = ctx.client()
      // fail now, with plexctl's usual message, rather than in the browser
      const self = await client.call<StatusReply>('GET', '/v1/status')
      const proxy = await startUiProxy(client, opts.port)
      ctx.print(`Plexus UI of ${self.name}: ${proxy.url}\n`)
      await new Promise<void>((resolve) => {
        const stop = () => {
          proxy.server.close(() => resolve())
          // an open event stream would hold close() forever
          proxy.server.closeAllConnections()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
    })
}
