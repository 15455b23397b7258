import type { FastifyPluginAsync } from 'fastify'
import { labelsKey } from '../../cluster/membership.js'
import { PlexusError } from '../../lib/errors.js'
import type { ApiDeps } from '../deps.js'

// GET /v1/hosts                      members with state, last heard, labels, RTT estimate
// PUT /v1/hosts/<name>/labels        {"labels": {"k": "v", "gone": null}} (null removes)
// Labels set here live in the shared key config/labels/<name>, so any host can
// label any other; the labelled host folds them into its own heartbeat record.

const LABEL_KEY = '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$'
const CAS_RETRIES = 5

const host = {
  type: 'object',
  required: ['name', 'peerId', 'address', 'state', 'self', 'lastHeard', 'silentMs', 'labels', 'rttMs'],
  properties: {
    name: { type: 'string' },
    peerId: { type: 'string' },
    address: { type: 'string' },
    state: { enum: ['alive', 'suspect', 'dead'] },
    self: { type: 'boolean' },
    lastHeard: { type: 'string' },
    silentMs: { type: 'integer' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    rttMs: { type: ['number', 'null'] },
    version: { type: 'string' },
    startedAt: { type: 'string' },
    multiaddrs: { type: 'array', items: { type: 'string' } },
  },
} as const

const labels = { type: 'object', additionalProperties: { type: 'string' } } as const

export const hostsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const members = () => {
    if (!deps.members)
      throw new PlexusError('PLX_API_UNAVAILABLE', 'membership is not running', { status: 503 })
    return deps.members
  }

  app.get(
    '/v1/hosts',
    {
      schema: {
        response: {
          200: { type: 'object', required: ['hosts'], properties: { hosts: { type: 'array', items: host } } },
        },
      },
    },
    async () => ({ hosts: members().hosts() }),
  )

  app.put<{ Params: { name: string }; Body: { labels: Record<string, string | null> } }>(
    '/v1/hosts/:name/labels',
    {
      schema: {
        params: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string', minLength: 1 } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['labels'],
          properties: {
            labels: {
              type: 'object',
              propertyNames: { pattern: LABEL_KEY },
              additionalProperties: { type: ['string', 'null'], maxLength: 256 },
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['name', 'labels'],
            properties: { name: { type: 'string' }, labels },
          },
        },
      },
    },
    async (req) => {
      const { name } = req.params
      if (
        !members()
          .hosts()
          .some((h) => h.name === name)
      ) {
        throw new PlexusError('PLX_HOSTS_NOT_FOUND', `no host named ${name}`, { status: 404 })
      }
      const key = labelsKey(name)
      // read-modify-write with compare-and-set, so two operators labelling at once both land
      for (let attempt = 0; ; attempt++) {
        const cur = deps.store.get(key)
        const next: Record<string, string> = { ...((cur?.value as Record<string, string> | undefined) ?? {}) }
        for (const [k, v] of Object.entries(req.body.labels)) {
          if (v === null) delete next[k]
          else next[k] = v
        }
        try {
          await deps.store.put(key, next, { cas: cur ? deps.store.modifyIndex(key) : 0 })
          return { name, labels: next }
        } catch (err) {
          if (attempt >= CAS_RETRIES || (err as PlexusError).code !== 'PLX_STORE_CAS_FAILED') throw err
        }
      }
    },
  )
}
