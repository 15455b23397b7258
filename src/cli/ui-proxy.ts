// `plexctl ui`: a local TCP port forwarded to the agent's unix socket (or, with -H, to a remote
// agent's TCP API with the operator's token, which the browser never sees: the UI then sees and
// does what that token's policies allow, KV included), so a browser can open the web UI the agent
// serves at /ui/. The socket is root-only (mode 0600) and can attach containers, and a token is a
// secret, so the port must not hand either to every local user or to any web page the browser visits:
// - it listens on loopback only;
// - every request carries a random token: the printed URL holds it once (?token=), the proxy
//   trades it for an HttpOnly, SameSite=Strict cookie and redirects to the same path without it,
//   so it stays out of the address bar and other sites' requests never carry it;
// - the Host header must name the loopback address and port (a DNS-rebinding page sends its own name).
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ApiClient } from './client.js'

const COOKIE = 'plexus_ui'

export interface UiProxy {
  server: Server
  /** what to open: the UI with the one-time token */
  url: string
}

function cookieToken(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=')
    if (k === COOKIE) return v
  }
  return undefined
}

function same(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false
  return timingSafeEqual(Buffer.from(a), Buffer.from(b))
}

function refuse(res: ServerResponse, status: number, error: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error, message }))
}

/** Starts the proxy on 127.0.0.1:port (0: any free port), forwarding through the client's connection to its agent. */
export async function startUiProxy(
  agent: Pick<ApiClient, 'socket' | 'forward'>,
  port: number,
): Promise<UiProxy> {
  const token = randomBytes(24).toString('base64url')
  let origin = ''
  const server = createServer((req, res) => {
    if (req.headers.host !== origin.slice('http://'.length))
      return refuse(res, 421, 'PLX_UI_BAD_HOST', `this port answers only to ${origin}`)
    const url = new URL(req.url ?? '/', origin)
    const offered = url.searchParams.get('token')
    if (offered !== null) {
      if (!same(offered, token))
        return refuse(res, 403, 'PLX_UI_BAD_TOKEN', 'wrong token: use the URL plexctl ui printed')
      url.searchParams.delete('token')
      res.writeHead(303, {
        location: url.pathname + url.search,
        'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      })
      return res.end()
    }
    if (!same(cookieToken(req), token))
      return refuse(res, 403, 'PLX_UI_BAD_TOKEN', 'no token: open the URL plexctl ui printed')
    const headers = { ...req.headers }
    delete headers.cookie
    // the agent's own host name for a remote one (its TLS name), not this port's
    delete headers.host
    const upstream = agent.forward({ method: req.method ?? 'GET', path: req.url ?? '/', headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    })
    upstream.on('error', (err) => {
      if (!res.headersSent)
        refuse(res, 502, 'PLX_UI_UNREACHABLE', `cannot reach plexusd at ${agent.socket}: ${err.message}`)
      else res.destroy()
    })
    // a closed browser tab ends the agent-side request too (an event stream would otherwise stay open)
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { server, url: `${origin}/ui/?token=${token}` }
}
