// The agent's runtime settings, as the first line of its entry point gives
// them (`#!/usr/bin/env -S VAR=value node --flag ...`, see src/agent/main.ts),
// so a benchmark that runs agent code outside plexusd (bench/dns-target) runs
// it with the same heap and allocator settings.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from './report.js'

export interface AgentRuntime {
  /** VAR=value words for env(1) */
  env: string[]
  nodeArgs: string[]
}

export function agentRuntime(): AgentRuntime {
  const entry = join(REPO, 'dist/src/agent/main.js')
  const first = readFileSync(entry, 'utf8').split('\n', 1)[0] ?? ''
  const words = /^#!\/usr\/bin\/env -S (.+)$/.exec(first)?.[1]?.split(/\s+/) ?? []
  const at = words.indexOf('node')
  if (at < 0) throw new Error(`${entry}: first line is not "#!/usr/bin/env -S ... node ...": ${first}`)
  return { env: words.slice(0, at), nodeArgs: words.slice(at + 1) }
}
