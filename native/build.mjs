// Builds the native addons (setns, batched UDP, malloc_trim, posix_spawn) with node-gyp against the running node's own headers
// (--nodedir), so nothing is downloaded. See README.md.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')
const nodedir = dirname(dirname(process.execPath))
if (!existsSync(`${nodedir}/include/node/node_api.h`)) {
  // node-gyp would try to download headers, which an offline build machine cannot
  console.error(`native/build.mjs: no Node headers under ${nodedir}/include/node (install the nodejs headers package)`)
  process.exit(1)
}
execFileSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: here, stdio: 'inherit' })
// into dist/, next to the compiled code that loads it, so whatever ships dist/ ships the addon
const out = join(here, '../dist/native')
mkdirSync(out, { recursive: true })
// Copied beside the target, then renamed over it: a running agent keeps its mapping of the
// old file (a new inode) instead of having the library it executes rewritten under it (SIGBUS).
for (const name of ['plexus_netns.node', 'plexus_udp.node', 'plexus_mem.node', 'plexus_spawn.node']) {
  const tmp = join(out, `.${name}.${process.pid}`)
  copyFileSync(join(here, 'build/Release', name), tmp)
  renameSync(tmp, join(out, name))
}
