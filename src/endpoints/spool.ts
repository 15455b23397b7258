// DELs the plugin took while the agent was down (cni/lib/spool.ts writes
// them). The agent reads them when it starts, finishes each DEL, then removes
// the file. Reading is apart from acting so the service decides what to release.
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { SpoolRecord } from '../../cni/lib/agent-api.js'

export { spoolDirOf } from '../../cni/lib/agent-api.js'

export interface SpooledDel {
  file: string
  /** undefined when the file is not a spool record (it is removed and logged) */
  record?: SpoolRecord
}

function isSpoolRecord(v: unknown): v is SpoolRecord {
  const r = v as Partial<SpoolRecord> | null
  return (
    typeof r === 'object' &&
    r !== null &&
    r.version === 1 &&
    typeof r.containerId === 'string' &&
    r.containerId !== '' &&
    typeof r.ifname === 'string' &&
    r.ifname !== '' &&
    typeof r.netns === 'string' &&
    typeof r.at === 'number' &&
    Number.isFinite(r.at)
  )
}

/** Every spooled DEL in dirs, oldest first. A folder that does not exist holds none. */
export async function readSpool(dirs: readonly string[]): Promise<SpooledDel[]> {
  const out: (SpooledDel & { at: number })[] = []
  for (const dir of new Set(dirs)) {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    // a .tmp is a record the plugin did not finish writing: it retried or will
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const file = join(dir, name)
      let record: unknown
      try {
        record = JSON.parse(await readFile(file, 'utf8'))
      } catch {
        record = undefined
      }
      out.push(isSpoolRecord(record) ? { file, record, at: record.at } : { file, at: 0 })
    }
  }
  return out.sort((a, b) => a.at - b.at).map(({ file, record }) => (record ? { file, record } : { file }))
}

export const removeSpooled = (file: string) => rm(file, { force: true })
