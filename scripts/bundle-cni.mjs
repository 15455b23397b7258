#!/usr/bin/env node
// Bundles the CNI plugin (cni/plexus.ts) into one executable file,
// dist/cni/plexus, that runtimes copy into their CNI bin dir. Bundled and
// minified, because parsing is part of every container start. The plugin
// imports node built-ins only dynamically, so the output has no import or
// require statement and runs alike as ESM (here, under "type": "module") and
// as CommonJS (copied alone into /opt/cni/bin); the check below keeps it so.
import { chmod, mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outfile = join(root, 'dist/cni/plexus')

await mkdir(dirname(outfile), { recursive: true })
await rm(join(dirname(outfile), 'package.json'), { force: true })
const result = await build({
  entryPoints: [join(root, 'cni/plexus.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  legalComments: 'none',
  banner: { js: '#!/usr/bin/env node' },
  metafile: true,
  logLevel: 'warning',
})
const code = await readFile(outfile, 'utf8')
if (/(^|[;}\n])\s*(import\s*[{*\w]|export\s)|\brequire\(/.test(code)) {
  throw new Error(`${outfile} has an import/export/require statement; import node built-ins dynamically`)
}
await chmod(outfile, 0o755)
const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0
process.stderr.write(`bundled ${outfile} (${bytes} bytes)\n`)
