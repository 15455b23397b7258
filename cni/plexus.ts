// The `plexus` CNI plugin. A thin client: it validates what the runtime sent
// (stdin + CNI_* environment), hands the work to the host's plexusd over its
// unix socket, and prints the result in the CNI version the runtime asked for
// (lib/invoke.ts). Keep imports light: every container start pays for this
// process's startup. Installed behind the native front end (cni/front/), it
// runs only when the agent cannot take the invocation itself: no agent (DEL
// then goes on alone), an agent without POST /v1/cni/invoke, or input the
// front end does not read.
//
// Node built-ins come from process.getBuiltinModule (Node 20.16+): the bundle
// then has no `require`, `import` statement or `import()`, so node runs it the
// same whether it sits under this repo's "type": "module" or alone in
// /opt/cni/bin (read as CommonJS), and never starts the ESM loader for a
// dynamic import (3 ms of every container start).
import type { NetnsHandle } from './lib/agent-api.js'
import { callAgent } from './lib/client.js'
import { CniCode, CniError } from './lib/errors.js'
import { invoke } from './lib/invoke.js'
import { removeInterface, writeSpool } from './lib/spool.js'

type Fs = typeof import('node:fs')

function readStdin(fs: Fs): string {
  try {
    return fs.readFileSync(0, 'utf8')
  } catch (err) {
    // EAGAIN: stdin is a terminal or non-blocking pipe with nothing written: no config
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return ''
    throw new CniError(CniCode.IO_FAILURE, `reading stdin failed: ${(err as Error).message}`)
  }
}

/**
 * Opens the container's namespace for ADD and CHECK: a missing one means
 * "unknown container" (3). The agent reaches it through this process's
 * descriptor, so a runtime in another mount namespace (kind, k3s in docker,
 * `ip netns exec`) works although the agent cannot see CNI_NETNS. The
 * descriptor stays open until the process exits, after the agent answered.
 */
function openNetns(fs: Fs, path: string): NetnsHandle {
  let fd: number
  try {
    fd = fs.openSync(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    throw new CniError(
      CniCode.UNKNOWN_CONTAINER,
      code === 'ENOENT' ? `network namespace ${path} does not exist` : `cannot open ${path}: ${code}`,
      code,
    )
  }
  return { pid: process.pid, fd, ino: fs.fstatSync(fd).ino }
}

async function main(): Promise<void> {
  const fs = process.getBuiltinModule('node:fs')
  const warn = (what: string) => fs.writeSync(2, `plexus: ${what}\n`)
  const out = await invoke({
    env: process.env,
    stdin: () => readStdin(fs),
    call: callAgent,
    openNetns: (path) => openNetns(fs, path),
    warn,
    // With no agent to answer, the plugin removes the interface itself and
    // spools the rest for the agent (lib/spool.ts), so the runtime's teardown goes on.
    delWithoutAgent: (conf, env, err) => {
      const key = { containerId: env.containerId, ifname: env.ifname }
      const file = writeSpool(fs, conf.socket, { version: 1, ...key, netns: env.netns, at: Date.now() })
      warn(
        `DEL ${env.containerId}/${env.ifname}: ${err.msg}; ${removeInterface(fs, env)}; the agent releases the rest when it starts (${file})`,
      )
    },
  })
  if (out.stdout) fs.writeSync(1, out.stdout)
  process.exit(out.exitCode)
}

void main()
