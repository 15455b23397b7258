import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { EndpointJournal } from '../../../src/endpoints/journal.js'
import type { EndpointValue } from '../../../src/store/records.js'

const value = (id: string): EndpointValue => ({
  containerId: id,
  ifname: 'eth0',
  name: id,
  host: 'h1',
  ipv4: '10.244.3.7',
  mac: '0a:00:00:00:00:07',
  netns: '/run/netns/x',
  hostVeth: 'plx000000000000',
  labels: {},
  createdAt: '2026-01-01T00:00:00.000Z',
})

t.test('entries survive a reopen; deletes too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'sub/endpoints.json')
  const j = await EndpointJournal.open(file)
  await Promise.all([j.set('k1', value('a')), j.set('k2', value('b'))])
  await j.delete('k1')
  await j.delete('missing')
  const again = await EndpointJournal.open(file)
  t.same(
    again.list().map(([k]) => k),
    ['k2'],
  )
  t.equal(again.get('k2')?.containerId, 'b')
  t.match(readFileSync(file, 'utf8'), /"version":1/)
})

t.test('a damaged file stops the agent with a clear code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'endpoints.json')
  writeFileSync(file, '{oops')
  await t.rejects(EndpointJournal.open(file), { code: 'PLX_ENDPOINTS_JOURNAL_CORRUPT' })
  writeFileSync(file, '{"version":2}')
  await t.rejects(EndpointJournal.open(file), { code: 'PLX_ENDPOINTS_JOURNAL_CORRUPT' })
})
