#!/usr/bin/env node
// Bundles the web UI (src/ui, README there) into dist/ui/: app.js (preact and our code, minified,
// one ES module), app.css and index.html. The agent serves exactly these files at /ui/
// (src/api/routes/ui.ts); nothing is fetched at run time. Fails when app.js is over the
// budget of issue 16 (300 KB gzipped) and prints its size.
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const BUDGET_GZIP_BYTES = 300 * 1024
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/ui')

await rm(out, { recursive: true, force: true })
await mkdir(out, { recursive: true })
await build({
  entryPoints: [join(root, 'src/ui/app/main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
})
await copyFile(join(root, 'src/ui/index.html'), join(out, 'index.html'))
await copyFile(join(root, 'src/ui/style.css'), join(out, 'app.css'))
let total = 0
for (const f of ['app.js', 'app.css', 'index.html']) total += gzipSync(await readFile(join(out, f))).length
process.stderr.write(`bundled ${out} (${total} bytes gzipped)\n`)
if (total > BUDGET_GZIP_BYTES)
  throw new Error(`the UI is ${total} bytes gzipped, over the ${BUDGET_GZIP_BYTES} budget`)
