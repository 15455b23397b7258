import { chmod, mkdir, rm } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { PlexusError } from '../lib/errors.js'

/**
 * Serves one fastify app on several unix sockets (mode 0600: the API can
 * attach containers, so only root may use it). A stale socket file from a
 * crashed agent is replaced, but a live agent on the same path is refused.
 */
export async function listenUnix(app: FastifyInstance, paths: string[]): Promise<() => Promise<void>> {
  await app.ready()
  const servers: Server[] = []
  for (const path of paths) {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 })
    if (await socketAnswers(path)) {
      throw new PlexusError('PLX_API_IN_USE', `another plexusd is already serving ${path}`)
    }
    await rm(path, { force: true })
    const server = createServer((sock) => app.server.emit('connection', sock))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
    await chmod(path, 0o600)
    servers.push(server)
  }
  return async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    await Promise.all(paths.map((p) => rm(p, { force: true })))
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
}
