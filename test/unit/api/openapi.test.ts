// docs/openapi.json is generated from the route schemas (src/api/document.ts,
// `npm run openapi`): stale, invalid, or unlike what an agent serves, it fails here.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { StatusReply } from '../../../src/api/contract/status.js'
import { apiDocument } from '../../../src/api/document.js'
import { testApp } from '../../helpers/components.js'
import { REPO } from '../../helpers/fixture.js'

interface Doc {
  openapi: string
  paths: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, { schema: unknown }> }> }>
  >
}

const committed = JSON.parse(readFileSync(join(REPO, 'docs/openapi.json'), 'utf8')) as Doc

t.test(
  'docs/openapi.json is what the route schemas generate (else: npm run build && npm run openapi)',
  async (t) => {
    t.same(committed, await apiDocument())
  },
)

t.test('docs/openapi.json is a valid OpenAPI 3.1 document', async (t) => {
  const res = await new Validator().validate(committed as unknown as Parameters<Validator['validate']>[0])
  t.equal(committed.openapi, '3.1.0')
  t.ok(res.valid, `valid: ${JSON.stringify(res.errors)?.slice(0, 2000)}`)
})

t.test(
  'an agent serves GET /v1/openapi.json: the committed document, less the routes it does not run',
  async (t) => {
    const { app } = await testApp(t)
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' })
    t.equal(res.statusCode, 200)
    const served = res.json() as Doc
    const paths = Object.keys(served.paths)
    t.ok(paths.length >= 15, `${paths.length} paths served`)
    for (const p of paths) t.same(served.paths[p], committed.paths[p], `${p} as in docs/openapi.json`)
    // this agent has no scheduler: its routes are documented but not served
    t.ok(committed.paths['/v1/jobs'] && !served.paths['/v1/jobs'], 'optional routes only where they run')
  },
)

t.test('a contract schema is the documented response: same fields, same required ones', async (t) => {
  const doc = committed.paths['/v1/status']?.get?.responses?.['200']?.content?.['application/json']?.schema as
    | { properties: Record<string, unknown>; required: string[] }
    | undefined
  t.same(Object.keys(doc?.properties ?? {}), Object.keys(StatusReply.properties))
  t.same(doc?.required, StatusReply.required)
})
