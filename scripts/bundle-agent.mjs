#!/usr/bin/env node
// Bundles plexusd (src/agent/main.ts) into one file that replaces tsc's
// dist/src/agent/main.js, so every launcher runs the bundle. Why: start-up to
// serving is what an agent restart costs (issue 18: goal 2 s), and loading the
// agent as ~1,250 separate ES modules (libp2p, fastify, ...) took about 3.4 s
// of CPU before the agent did anything; one file takes about 1.5 s. The bundle
// stays at tsc's path, two folders below dist/, so the relative paths the code
// resolves from import.meta.url (dist/native/*.node, package.json) still hold.
// netlink stays outside: it loads its own native addon relative to its folder.
// Identifiers are kept (whitespace and syntax minified only) so stack traces
// in the agent's log still name functions.
import { chmod, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const entry = join(root, 'src/agent/main.ts')
const outfile = join(root, 'dist/src/agent/main.js')

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minifyWhitespace: true,
  minifySyntax: true,
  external: ['netlink'],
  // ES builds first: jsonc-parser's CommonJS entry is a UMD wrapper whose require() of its own files esbuild cannot follow
  mainFields: ['module', 'main'],
  legalComments: 'none',
  // CommonJS packages inside an ES module bundle call require() for node built-ins
  banner: {
    js: `import { createRequire as __plexusRequire } from 'node:module';const require = __plexusRequire(import.meta.url);`,
  },
  metafile: true,
  logLevel: 'warning',
})
// esbuild keeps the entry's #! line (the runtime flags every launcher gets, see main.ts) on top
if (!(await readFile(outfile, 'utf8')).startsWith('#!/usr/bin/env -S '))
  throw new Error(`${outfile} lost its #! line`)
await chmod(outfile, 0o755)
const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0
process.stderr.write(
  `bundled ${outfile} (${Object.keys(result.metafile.inputs).length} modules, ${bytes} bytes)\n`,
)
