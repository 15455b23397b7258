// A task's output, as multilog (daemontools) leaves it in <task>/logs/:
// `current` and at most files-1 rotated `@<tai64n>.s` files, oldest first by
// name. Reading is the runner's; rotation is multilog's (see README: why).
import { createReadStream } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { sleep } from '../lib/proc.js'

/** The log files in order, oldest first (rotated ones, then current). */
export async function logFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const rotated = names.filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort()
  return [...rotated, ...(names.includes('current') ? ['current'] : [])].map((n) => join(dir, n))
}

/** The last `tail` lines of a task's output (all of what is kept when tail is undefined). */
export async function readLogs(dir: string, tail?: number): Promise<string> {
  const files = await logFiles(dir)
  let text = ''
  // newest first, stopping once there are enough lines: a tail never reads every file
  for (let i = files.length - 1; i >= 0; i--) {
    text = (await readFile(files[i] as string, 'utf8').catch(() => '')) + text
    if (tail !== undefined && text.split('\n').length > tail + 1) break
  }
  if (tail === undefined) return text
  // multilog ends every line it writes with a newline
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
    .slice(-tail)
    .map((l) => `${l}\n`)
    .join('')
}

/**
 * Follows `current` from its end (tail -F): calls onData with what is
 * appended; when multilog rotates (the file is replaced, so it shrinks or
 * changes inode) it reads the new one from its start. Ends when signal aborts.
 */
export async function followLogs(
  dir: string,
  onData: (chunk: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const file = join(dir, 'current')
  let pos = (await stat(file).catch(() => undefined))?.size ?? 0
  let ino = (await stat(file).catch(() => undefined))?.ino
  while (!signal.aborted) {
    const st = await stat(file).catch(() => undefined)
    if (st && (st.ino !== ino || st.size < pos)) {
      ino = st.ino
      pos = 0
    }
    if (st && st.size > pos) {
      const end = st.size
      await new Promise<void>((resolve) => {
        createReadStream(file, { start: pos, end: end - 1, encoding: 'utf8' })
          .on('data', (c) => onData(String(c)))
          .on('close', () => resolve())
          .on('error', () => resolve())
      })
      pos = end
    }
    await sleep(200)
  }
}
