import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { defaultConfig } from '../../../src/agent/config.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LinkService } from '../../../src/ports/link-service.js'
import type { JsonValue } from '../../../src/store/types.js'
import { endpointValue } from '../../helpers/records.js'
import { newStore } from '../store/helpers.js'

t.test('links resolve past endpoint, health and service records that are not well formed', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'plexus-links-'))
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  const here = await newStore()
  const peer = await newStore({ now: here.clock })
  // what a buggy or hostile member may gossip under its own keys
  const bad = [
    await peer.store.put(`endpoints/${peer.signer.self}/a/eth0`, null),
    await peer.store.put(`endpoints/${peer.signer.self}/b/eth0`, { name: 'web', ipv4: 42 }),
    await peer.store.put(`health/${peer.signer.self}/x`, 'critical'),
    await peer.store.put('services/web', [1, 2]),
  ]
  const good = await peer.store.put(
    `endpoints/${peer.signer.self}/c/eth0`,
    endpointValue('web', '10.244.2.5', { host: 'h2' }) as unknown as JsonValue,
  )
  here.store.merge([...bad, good])
  const links = new LinkService({
    config: { ...defaultConfig(), stateDir },
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    store: here.store,
    peerId: here.signer.self,
  })
  t.same(links.resolve('web'), { name: 'web', ipv4: '10.244.2.5', host: 'h2', ports: [] })
  t.equal(links.resolve('nobody'), undefined)
})
