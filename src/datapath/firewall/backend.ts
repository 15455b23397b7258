import type { FirewallSpec, FirewallView } from './model.js'

/** What every firewall backend does; the implementations sit beside it, picked in index.ts. */
export interface FirewallBackend {
  readonly name: 'iptables' | 'nftables'
  /** iptables flavour in use (nf_tables or legacy) */
  readonly variant: string | undefined
  /** our chains/table, reduced to rule tags per hook */
  read(): Promise<FirewallView>
  /** makes our chains/table exactly spec, as one atomic batch */
  apply(spec: FirewallSpec): Promise<void>
  /** removes our chains/table and jumps; false if there was nothing */
  remove(): Promise<boolean>
}
