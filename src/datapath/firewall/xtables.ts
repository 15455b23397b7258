// What iptables-restore and ebtables-restore share: the lines of one edit of
// a chain (both take `-D <chain> <n>`, `-I <chain> <n> …`, `-A <chain> …`).
import { chainEdit } from './model.js'

/**
 * Lines that turn one of our chains from `have` into `want` (chainEdit):
 * deletions by number, highest first so the lower numbers stay valid, then
 * insertions in ascending order, each at its final position (appends at the end).
 */
export function editChain(chain: string, have: string[], want: { tag: string; args: string }[]): string[] {
  const { deletes, inserts } = chainEdit(
    have,
    want.map((w) => w.tag),
  )
  let length = have.length - deletes.length
  const ins = inserts.map(({ want: i }) => {
    const args = want[i]?.args
    return i + 1 > length++ ? `-A ${chain} ${args}` : `-I ${chain} ${i + 1} ${args}`
  })
  return [...deletes.reverse().map((n) => `-D ${chain} ${n + 1}`), ...ins]
}

/** whether restore input changes anything: a line besides the table headers and COMMIT */
export function edits(restore: string): boolean {
  return restore.split('\n').some((l) => l !== '' && l !== 'COMMIT' && !l.startsWith('*'))
}
