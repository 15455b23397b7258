import type { ApiDeps } from '../api/deps.js'
import type { AgentConfig } from './config.js'

/**
 * What the composition root hands each service (js-libp2p style: a service
 * lists only the components it needs; see src/api/deps.ts for the fields).
 * A new module adds its component to ApiDeps as an optional field when the
 * API shows it, and fills it in agent.ts.
 */
export interface AgentComponents extends ApiDeps {
  config: AgentConfig
}
