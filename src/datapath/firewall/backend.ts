import type { FirewallSpec, FirewallView } from './model.js'

/** What every firewall backend does; the implementations sit beside it, picked in index.ts. */
export interface FirewallBackend {
  readonly name: 'iptables' | 'nftables'
  /** iptables flavour in use (nf_tables or legacy) */
  readonly variant: string | undefined
  /**
   * our chains/tables, reduced to rule tags per hook, with the kernel's packet
   * counts; `want`, the spec the caller expects, names rules a backend cannot
   * tag in the kernel (ebtables has no comments)
   */
  read(want?: FirewallSpec): Promise<FirewallView>
  /**
   * a number that moves whenever what read() lists may have changed (the
   * nf_tables generation: lib/nft-gen.ts); undefined when the backend cannot
   * tell (legacy iptables), so the caller reads
   */
  generation(): Promise<number | undefined>
  /** makes our chains/table exactly spec, as one atomic batch */
  apply(spec: FirewallSpec): Promise<void>
  /**
   * starts the processes the next apply() will write through, so a batch
   * someone waits for (a CNI ADD) does not wait for them to start
   * (exec.ts WarmTools); called after a pass, off the path of its waiters
   */
  prepare(): void
  /** ends what prepare() started (the agent stops) */
  release(): void
  /** removes our chains/table and jumps; false if there was nothing */
  remove(): Promise<boolean>
}
