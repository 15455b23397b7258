import * as fs from 'node:fs'
import t from 'tap'
import { removeInterface } from '../../../cni/lib/spool.js'

const env = { command: 'DEL' as const, containerId: 'c1', ifname: 'lo', args: {}, path: '/opt/cni/bin' }

t.test('DEL with the agent down never removes an interface from a host namespace', async (t) => {
  const before = fs.readdirSync('/sys/class/net').sort()
  // the plugin's own namespace (a runtime runs it in the host's); init's, where readable, is compared too
  t.match(
    removeInterface(fs, { ...env, netns: '/proc/self/ns/net' }),
    /is a host network namespace .*: nothing removed/,
  )
  t.same(fs.readdirSync('/sys/class/net').sort(), before, 'every interface is still there')
  t.match(removeInterface(fs, { ...env, netns: '' }), /already gone/)
  t.match(removeInterface(fs, { ...env, netns: '/run/netns/plexus-no-such-ns' }), /is gone/)
})
