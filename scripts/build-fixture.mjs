// Compiles the test bed's delay line between zones (netns-fixtures/zone-switch.c) into
// dist/netns-fixtures/, beside the fixture that starts it. C because it holds every frame between
// zones for a fixed time: a timer per frame on Node's event loop would add the jitter it must not.
import { execFileSync } from 'node:child_process'
import { mkdirSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/netns-fixtures/zone-switch')
mkdirSync(dirname(out), { recursive: true })
// compiled beside the target, then renamed over it: a running fixture may be executing the old one
const tmp = `${out}.${process.pid}`
execFileSync(
  'cc',
  ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, join(root, 'netns-fixtures/zone-switch.c')],
  {
    stdio: 'inherit',
  },
)
renameSync(tmp, out)
process.stderr.write(`compiled ${out}\n`)
