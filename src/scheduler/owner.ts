// Which host owns a job: rendezvous (highest random weight) hashing of the
// job's name with each alive host's peer id. Every host that sees the same
// alive set names the same owner without talking to anyone; when the owner
// dies only its jobs move (to the host with the next-highest weight), and a
// host that joins takes over only the jobs it now wins.
import { createHash } from 'node:crypto'

/** 64 bits of sha256(job, peer): cryptographic, so no job name can steer ownership onto a host. */
function weight(job: string, peer: string): bigint {
  return createHash('sha256').update(job).update('\0').update(peer).digest().readBigUInt64BE(0)
}

/** The owner of `job` among `alive` peer ids (undefined when none is alive). */
export function jobOwner(job: string, alive: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestWeight = -1n
  for (const peer of alive) {
    const w = weight(job, peer)
    // equal weights are all but impossible; the peer id breaks them the same way everywhere
    if (w > bestWeight || (w === bestWeight && best !== undefined && peer < best)) {
      ;[best, bestWeight] = [peer, w]
    }
  }
  return best
}
