import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { labelsKey } from '../../cluster/membership.js'
import { PlexusError } from '../../lib/errors.js'
import { drainKey, isDrained } from '../../scheduler/records.js'
import { drainCodec, labelsCodec } from '../../store/codecs.js'
import { DrainReply, HostParams, HostsReply, LabelsBody, LabelsReply } from '../contract/hosts.js'
import type { ApiDeps } from '../deps.js'

// GET /v1/hosts                      members with state, last heard, labels, RTT estimate
// PUT /v1/hosts/<name>/labels        {"labels": {"k": "v", "gone": null}} (null removes)
// PUT|DELETE /v1/hosts/<name>/drain  drain a host (no new placements, its allocations move away) or undo it
// Labels set here live in the shared key config/labels/<name>, so any host can
// label any other; the labelled host folds them into its own heartbeat record.

const CAS_RETRIES = 5

/** what the /v1/hosts routes read (registered with that prefix) */
export type HostsComponents = Pick<ApiDeps, 'store' | 'members'>

export const hostsRoutes: FastifyPluginAsyncTypebox<HostsComponents> = async (app, deps) => {
  const members = () => {
    if (!deps.members)
      throw new PlexusError('PLX_API_UNAVAILABLE', 'membership is not running', { status: 503 })
    return deps.members
  }

  const known = (name: string) => {
    if (
      !members()
        .hosts()
        .some((h) => h.name === name)
    )
      throw new PlexusError('PLX_HOSTS_NOT_FOUND', `no host named ${name}`, { status: 404 })
  }

  app.get('', { schema: { response: { 200: HostsReply } } }, async () => ({
    hosts: members()
      .hosts()
      .map((h) => ({ ...h, drained: isDrained(deps.store, h.name) })),
  }))

  app.put('/:name/drain', { schema: { params: HostParams, response: { 200: DrainReply } } }, async (req) => {
    known(req.params.name)
    await deps.store.put(drainKey(req.params.name), drainCodec.encode({ since: new Date().toISOString() }))
    return { name: req.params.name, drained: true }
  })

  app.delete(
    '/:name/drain',
    { schema: { params: HostParams, response: { 200: DrainReply } } },
    async (req) => {
      known(req.params.name)
      if (deps.store.get(drainKey(req.params.name))) await deps.store.delete(drainKey(req.params.name))
      return { name: req.params.name, drained: false }
    },
  )

  app.put(
    '/:name/labels',
    { schema: { params: HostParams, body: LabelsBody, response: { 200: LabelsReply } } },
    async (req) => {
      const { name } = req.params
      known(name)
      const key = labelsKey(name)
      // read-modify-write with compare-and-set, so two operators labelling at once both land
      for (let attempt = 0; ; attempt++) {
        const cur = deps.store.get(key)
        // labels that do not decode (a bad record from gossip) are replaced, not merged into
        const next: Record<string, string> = { ...((cur && labelsCodec.valueOf(cur)) ?? {}) }
        for (const [k, v] of Object.entries(req.body.labels)) {
          if (v === null) delete next[k]
          else next[k] = v
        }
        try {
          await deps.store.put(key, labelsCodec.encode(next), { cas: cur ? deps.store.modifyIndex(key) : 0 })
          return { name, labels: next }
        } catch (err) {
          if (attempt >= CAS_RETRIES || (err as PlexusError).code !== 'PLX_STORE_CAS_FAILED') throw err
        }
      }
    },
  )
}
