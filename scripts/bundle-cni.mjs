#!/usr/bin/env node
// Bundles the CNI plugin (cni/plexus.ts) into one executable file,
// dist/cni/bin/plexus, that runtimes copy into their CNI bin dir. Bundled and
// minified, because parsing is part of every container start. The plugin
// takes node built-ins from process.getBuiltinModule, so the output has no
// import, import() or require and runs alike as ESM (here, under "type":
// "module") and as CommonJS (copied alone into /opt/cni/bin); the check
// below keeps it so.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outfile = join(root, 'dist/cni/bin/plexus')

await mkdir(dirname(outfile), { recursive: true })
// Node starts a CommonJS entry 3-4 ms sooner than an ES module: in dist/ the
// plugin sits under this repo's "type": "module" unless its folder says otherwise.
await writeFile(join(dirname(outfile), 'package.json'), '{ "type": "commonjs" }\n')
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
if (/(^|[;}\n])\s*(import\s*[{*\w]|export\s)|\b(require|import)\(/.test(code)) {
  throw new Error(`${outfile} has an import, export, import() or require; use process.getBuiltinModule`)
}
await chmod(outfile, 0o755)
const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0
process.stderr.write(`bundled ${outfile} (${bytes} bytes)\n`)
