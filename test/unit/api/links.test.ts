import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../../src/api/app.js'
import { LinkService } from '../../../src/ports/link-service.js'
import { hostsFileProblem } from '../../../src/ports/links.js'
import type { JsonValue } from '../../../src/store/types.js'
import { testComponents } from '../../helpers/components.js'
import { endpointValue } from '../../helpers/records.js'

const HOSTS = '127.0.0.1\tlocalhost\n'

/** an agent with containers `app` (id app-0123456789ab) and `db` on this host */
async function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-links-api-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { deps, store } = await testComponents()
  deps.config = { ...deps.config, stateDir: dir }
  const app = endpointValue('app', '10.244.1.5')
  const db = endpointValue('db', '10.244.1.6')
  for (const ep of [app, db])
    await store.put(`endpoints/${store.self}/${ep.containerId}/eth0`, ep as unknown as JsonValue)
  const links = new LinkService({ ...deps, store })
  const api = await buildApp({ ...deps, links })
  t.teardown(() => api.close())
  const file = (...parts: string[]) => {
    const f = join(dir, ...parts)
    mkdirSync(join(f, '..'), { recursive: true })
    writeFileSync(f, HOSTS)
    return f
  }
  const put = (container: string, hostsFile: string) =>
    api.inject({ method: 'PUT', url: `/v1/links/${container}/db`, payload: { target: 'db', hostsFile } })
  return { dir, app, file, put }
}

t.test('PUT /v1/links writes only the hosts file of a container this host owns', async (t) => {
  const { dir, app, file, put } = await setup(t)
  const victim = file('etc', 'passwd')
  let res = await put('app', victim)
  t.equal(res.statusCode, 403, 'a file that is not the container’s')
  t.equal(res.json().error, 'PLX_LINK_HOSTS_FILE_REFUSED')
  t.equal(readFileSync(victim, 'utf8'), HOSTS, 'left alone')

  const other = file('ctr', 'someone-else-0123', 'hosts')
  res = await put('app', other)
  t.equal(res.statusCode, 403, 'a hosts file of another container id')
  t.equal(readFileSync(other, 'utf8'), HOSTS)

  const own = file('ctr', app.containerId, 'userdata', 'hosts')
  res = await put('nosuch', own)
  t.equal(res.statusCode, 403, 'a container with no endpoint on this host')
  t.equal(res.json().error, 'PLX_LINK_HOSTS_FILE_REFUSED')

  res = await put('app', `${own}/../../../../etc/passwd`)
  t.equal(res.statusCode, 403, 'dot-dot out of the container’s directory')

  const viaLink = join(dir, 'elsewhere', app.containerId, 'hosts')
  mkdirSync(join(viaLink, '..'), { recursive: true })
  symlinkSync(victim, viaLink)
  res = await put('app', viaLink)
  t.equal(res.statusCode, 403, 'a symlink named like the container’s hosts file')
  t.equal(readFileSync(victim, 'utf8'), HOSTS, 'the link’s target is left alone')

  res = await put('app', own)
  t.equal(res.statusCode, 200, res.body)
  t.match(
    readFileSync(own, 'utf8'),
    /# BEGIN plexus links\n10\.244\.1\.6\tdb\n/,
    'the container’s own hosts file is kept',
  )
})

t.test('hostsFileProblem: container-id directories and the ip-netns hosts file', async (t) => {
  const ep = { containerId: 'c0ffee123456', netns: '/run/netns/ctr-a' }
  t.equal(
    hostsFileProblem('/var/lib/containers/storage/overlay-containers/c0ffee123456/userdata/hosts', ep),
    undefined,
  )
  t.equal(hostsFileProblem('/etc/netns/ctr-a/hosts', ep), undefined)
  t.equal(hostsFileProblem('/etc/netns/ctr-a/hosts', { ...ep, netns: '/var/run/netns/ctr-a' }), undefined)
  t.ok(hostsFileProblem('/etc/netns/ctr-b/hosts', ep), 'another namespace’s file')
  t.ok(hostsFileProblem('/etc/hosts', ep), 'the host’s own')
  t.ok(hostsFileProblem('/x/c0ffee123456/passwd', ep), 'not a hosts file')
  t.ok(hostsFileProblem('/x/c0ffee123456/../hosts', ep), 'not normalized')
  t.ok(hostsFileProblem('x/c0ffee123456/hosts', ep), 'relative')
  t.ok(hostsFileProblem('/etc/netns/ctr-a/hosts', { ...ep, netns: '/proc/42/ns/net' }), 'no named namespace')
})
