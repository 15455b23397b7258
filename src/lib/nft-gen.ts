// The nf_tables ruleset generation of this network namespace (NFT_MSG_GETGEN
// over NETLINK_NETFILTER, the first thing `nft` itself asks). Every commit to
// nf_tables moves it on: nft's, iptables-nft's, ebtables-nft's, any other
// program's. A reader that listed the rules at generation g and sees g again
// knows nothing changed without spawning a process to list them again.
//
// Layouts: linux/netfilter/nfnetlink.h (struct nfgenmsg) and
// linux/netfilter/nf_tables.h (NFTA_GEN_*).
import { createNetlink } from 'netlink'
import { nlAttributes } from './nlattr.js'

const NETLINK_NETFILTER = 12
const NFNL_SUBSYS_NFTABLES = 10
const NFT_MSG_NEWGEN = 15
const NFT_MSG_GETGEN = 16
const NFTA_GEN_ID = 1
/** struct nfgenmsg: family (AF_UNSPEC), version (NFNETLINK_V0), res_id; the attributes follow it */
const NFGENMSG_LEN = 4

/** A netfilter netlink socket in the current network namespace (it stays bound to it). */
export const openNetfilter = () => createNetlink(NETLINK_NETFILTER)

/** The generation id in a NEWGEN answer's payload (pure); undefined when it holds none. */
export function parseGeneration(data: Buffer): number | undefined {
  const id = nlAttributes(data.subarray(NFGENMSG_LEN)).get(NFTA_GEN_ID)
  return id && id.length >= 4 ? id.readUInt32BE(0) : undefined
}

/**
 * The current generation, read on a socket `open` makes (this namespace, or
 * another one through datapath/netns.ts withNetns); undefined when the kernel
 * does not answer with one (no nf_tables), so the caller reads the rules.
 */
export async function nftGeneration(open = openNetfilter, timeoutMs = 1000): Promise<number | undefined> {
  let nl: ReturnType<typeof openNetfilter> | undefined
  try {
    nl = open()
    const [msgs] = await nl.request(
      (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
      Buffer.alloc(NFGENMSG_LEN),
      {
        timeout: timeoutMs,
      },
    )
    const gen = msgs.find((m) => m.type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN))
    return gen ? parseGeneration(gen.data) : undefined
  } catch {
    return undefined
  } finally {
    nl?.close()
  }
}
