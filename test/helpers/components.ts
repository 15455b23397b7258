// Agent components for tests that drive the API through inject(): a real
// LocalStore with a fresh identity, silent logs, and whatever a test adds.
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import type { AgentComponents } from '../../src/agent/components.js'
import { defaultConfig } from '../../src/agent/config.js'
import { buildApp } from '../../src/api/app.js'
import { createSigner, verifyRecordSignature } from '../../src/cluster/identity.js'
import { Metrics } from '../../src/lib/metrics.js'
import { LocalStore } from '../../src/store/store.js'

interface Teardownable {
  teardown(fn: () => unknown): void
}

export async function testComponents(
  extra: Partial<AgentComponents> = {},
): Promise<{ deps: AgentComponents; store: LocalStore }> {
  const signer = createSigner(await generateKeyPair('Ed25519'))
  const store = new LocalStore({ signer, verify: verifyRecordSignature })
  const deps: AgentComponents = {
    config: { ...defaultConfig(), name: 'h1' },
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    shutdown: new AbortController().signal,
    startedAt: new Date(),
    version: '0.0.0',
    peerId: signer.self,
    store,
    ...extra,
  }
  return { deps, store }
}

/** buildApp over testComponents(extra), closed in teardown. */
export async function testApp(
  t: Teardownable,
  extra: Partial<AgentComponents> = {},
): Promise<{ app: FastifyInstance; deps: AgentComponents; store: LocalStore }> {
  const { deps, store } = await testComponents(extra)
  const app = await buildApp(deps)
  t.teardown(() => app.close())
  return { app, deps, store }
}
