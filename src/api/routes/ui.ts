// The web UI (src/ui), served as the static files `make build` bundled into dist/ui/.
//   GET /ui            redirect to /ui/
//   GET /ui/           index.html
//   GET /ui/<file>     one of the bundle's files
// Only the files found in dist/ui/ when the agent starts are served, read once into memory:
// the request path is looked up in that map, never joined onto a directory, so no path can
// leave the folder ("..", encoded slashes, symlinks made later: all simply not in the map).
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { PlexusError } from '../../lib/errors.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

interface UiFile {
  type: string
  body: Buffer
}

/**
 * dist/ui/ from where this code runs: the agent bundle (dist/src/agent/main.js) and tsc's
 * output (dist/src/api/routes/ui.js) sit at different depths, as in src/lib/version.ts.
 */
function uiDir(): string | undefined {
  for (const rel of ['../../ui/', '../../../ui/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url))
    try {
      if (statSync(join(dir, 'index.html')).isFile()) return dir
    } catch {
      // try the next candidate
    }
  }
  return undefined
}

/** The bundle's files by name (flat: the bundle has no sub-folders); only regular files (no symlinks) of known types. */
export function loadUiFiles(dir: string | undefined = uiDir()): Map<string, UiFile> {
  const files = new Map<string, UiFile>()
  if (!dir) return files
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)]
    const path = join(dir, name)
    if (type && lstatSync(path).isFile()) files.set(name, { type, body: readFileSync(path) })
  }
  return files
}

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"

export const uiRoutes: FastifyPluginAsync<{ files?: Map<string, UiFile> }> = async (app, opts) => {
  const files = opts.files ?? loadUiFiles()

  const serve = async (name: string, reply: FastifyReply) => {
    const f = files.get(name)
    if (!f) {
      if (files.size === 0)
        throw new PlexusError('PLX_UI_NOT_BUILT', 'the web UI is not built: run make build', { status: 404 })
      throw new PlexusError('PLX_UI_NOT_FOUND', `no UI file ${JSON.stringify(name)}`, { status: 404 })
    }
    return reply
      .type(f.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CSP)
      .send(f.body)
  }

  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/', 301))
  app.get('/ui/', { schema: { hide: true } }, async (_req, reply) => serve('index.html', reply))
  app.get<{ Params: { file: string } }>(
    '/ui/:file',
    {
      schema: {
        hide: true,
        params: {
          type: 'object',
          required: ['file'],
          properties: { file: { type: 'string', maxLength: 128 } },
        },
      },
    },
    async (req, reply) => serve(req.params.file, reply),
  )
}
