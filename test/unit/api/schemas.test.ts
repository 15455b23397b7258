// The agent compiles route schemas on each route's first request
// (src/api/compilers.ts), so a broken schema would only show on that request.
// Here every route of the app (optional components given, so every plugin
// registers) is compiled eagerly, as fastify would by default.
import t from 'tap'
import { buildApp } from '../../../src/api/app.js'
import { buildAppApi } from '../../../src/api/app-api.js'
import type { ApiDeps } from '../../../src/api/deps.js'
import { testComponents } from '../../helpers/components.js'

t.test('every route schema compiles (validators and serializers)', async (t) => {
  const { deps } = await testComponents()
  // the plugins only keep these for their handlers; no handler runs here
  const all = { ...deps, links: {}, ports: {}, scheduler: {}, runner: {} } as unknown as ApiDeps
  const app = await buildApp(all, { eagerSchemas: true })
  t.teardown(() => app.close())
  await t.resolves(async () => {
    await app.ready()
  }, 'fastify compiled every schema')
  const routes = app.printRoutes({ commonPrefix: false })
  for (const path of ['/v1/jobs', '/v1/links', '/v1/ports', '/v1/allocs', '/v1/cni/add'])
    t.match(routes, path, `${path} is among them`)
})

t.test('every application API route schema compiles, and no operator route is on it', async (t) => {
  const { deps } = await testComponents()
  const app = await buildAppApi(deps, { eagerSchemas: true })
  t.teardown(() => app.close())
  await t.resolves(async () => {
    await app.ready()
  }, 'fastify compiled every schema')
  const routes = app.printRoutes({ commonPrefix: false })
  for (const url of ['/v1/kv/*', '/v1/watch/*', '/v1/health/service/:name', '/v1/agent/self'])
    t.ok(app.hasRoute({ method: 'GET', url }), `GET ${url} is among them`)
  for (const path of ['/v1/jobs', '/v1/cni/add', '/v1/endpoints/', '/v1/networks'])
    t.notMatch(routes, path, `${path} is not`)
})

t.test('the agent app defers compiling: a route still validates on its first request', async (t) => {
  const { deps } = await testComponents()
  const app = await buildApp(deps)
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/v1/dns/query?type=BOGUS&name=x' })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error, 'PLX_API_BAD_REQUEST')
})
