/**
 * A long-running part of the agent (js-libp2p's Startable). The composition
 * root starts services in registration order and stops them in reverse; a
 * service only ever sees the components it declares, never the root.
 */
export interface Startable {
  start(): Promise<void>
  stop(): Promise<void>
}
