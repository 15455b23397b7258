import type { FastifyPluginAsync } from 'fastify'
import { type NetworkConfigInput, networkConfigSchema } from '../../ipam/config.js'
import { initNetwork, readNetwork } from '../../ipam/network.js'
import { PlexusError } from '../../lib/errors.js'
import type { ApiDeps } from '../deps.js'

// The stored config is normalized, so every field is present: the input schema plus `required`.
const configSchema = {
  ...networkConfigSchema,
  required: ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend', 'IPMasq'],
  properties: {
    ...networkConfigSchema.properties,
    Backend: {
      ...networkConfigSchema.properties.Backend,
      required: ['Type', 'VNI', 'Port', 'DirectRouting'],
    },
  },
} as const

const infoSchema = {
  type: 'object',
  required: ['config', 'setBy', 'setAt'],
  properties: {
    config: { anyOf: [configSchema, { type: 'null' }] },
    problem: { type: 'string' },
    setBy: { type: 'string' },
    setAt: { type: 'string' },
    /** this host's overlay MTU, once it holds a lease */
    mtu: { type: 'integer' },
  },
} as const

/** The cluster network config (store key config/network): read it, or set it once. */
export const networkRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get('/v1/network', { schema: { response: { 200: infoSchema } } }, async () => {
    const info = readNetwork(deps.store)
    if (!info) {
      throw new PlexusError('PLX_IPAM_NO_NETWORK', 'no network config is set: run `plexctl network init`', {
        status: 404,
      })
    }
    const mtu = deps.lease?.current()?.mtu
    return mtu === undefined ? info : { ...info, mtu }
  })

  app.put<{ Body: NetworkConfigInput; Querystring: { force?: boolean } }>(
    '/v1/network',
    {
      schema: {
        // Only the outer type here: parseNetworkConfig names every bad field (and suggests the right
        // spelling), where the schema would only say "must NOT have additional properties".
        body: { type: 'object' },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { force: { type: 'boolean' } },
        },
        response: {
          200: {
            type: 'object',
            required: ['config', 'changed'],
            properties: { config: configSchema, changed: { type: 'boolean' } },
          },
        },
      },
    },
    async (req) => initNetwork(deps.store, req.body, req.query.force === true),
  )
}
