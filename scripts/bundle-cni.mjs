#!/usr/bin/env node
// Builds the CNI plugin into dist/cni/bin/, the two files runtimes copy into
// their CNI bin dir: `plexus`, the native front end (cni/front/plexus.c) that
// forwards each invocation to the agent, and `plexus-node`, the Node plugin
// (cni/plexus.ts) it runs when it cannot forward. The Node plugin is bundled and
// minified, because parsing is part of every container start. The plugin
// takes node built-ins from process.getBuiltinModule, so the output has no
// import, import() or require and runs alike as ESM (here, under "type":
// "module") and as CommonJS (copied alone into /opt/cni/bin); the check
// below keeps it so.
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const front = join(root, 'dist/cni/bin/plexus')
const outfile = join(root, 'dist/cni/bin/plexus-node')

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

// Compiled beside the target, then renamed over it: a runtime (or a test) may be executing the old one.
const tmp = `${front}.${process.pid}`
execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, join(root, 'cni/front/plexus.c')], {
  stdio: 'inherit',
})
await rename(tmp, front)
process.stderr.write(`compiled ${front}\n`)
