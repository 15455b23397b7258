import type { InjectOptions } from 'fastify'
import t from 'tap'
import { testApp } from '../../helpers/components.js'

const JSON_TYPE = { 'content-type': 'application/json' }

t.test('every error a client can provoke carries a PLX_ code, never a fastify FST_ code', async (t) => {
  const { app } = await testApp(t)
  const cases: { name: string; req: InjectOptions; status: number; code: string }[] = [
    {
      name: 'malformed JSON',
      req: { method: 'PUT', url: '/v1/kv/a', payload: '{bad', headers: JSON_TYPE },
      status: 400,
      code: 'PLX_API_BAD_JSON',
    },
    {
      name: 'empty JSON body',
      req: { method: 'PUT', url: '/v1/kv/a', payload: '', headers: JSON_TYPE },
      status: 400,
      code: 'PLX_API_BAD_JSON',
    },
    {
      name: 'prototype poisoning',
      req: { method: 'PUT', url: '/v1/kv/a', payload: '{"__proto__":{"x":1}}', headers: JSON_TYPE },
      status: 400,
      code: 'PLX_API_BAD_JSON',
    },
    {
      name: 'unsupported content type',
      req: { method: 'PUT', url: '/v1/kv/a', payload: 'x', headers: { 'content-type': 'text/x-nope' } },
      status: 415,
      code: 'PLX_API_UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'body over the limit',
      req: {
        method: 'PUT',
        url: '/v1/kv/a',
        payload: `"${'x'.repeat(2 * 1024 * 1024)}"`,
        headers: JSON_TYPE,
      },
      status: 413,
      code: 'PLX_API_TOO_LARGE',
    },
    {
      name: 'schema violation',
      req: { method: 'PUT', url: '/v1/kv/a?ttl=soon', payload: '1', headers: JSON_TYPE },
      status: 400,
      code: 'PLX_API_BAD_REQUEST',
    },
  ]
  for (const c of cases) {
    const res = await app.inject(c.req)
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    t.equal(res.json().error, c.code, `${c.name}: code`)
  }
})

t.test('JSON nested 4,000 deep is refused with 400 PLX_API_TOO_DEEP, not a stack overflow', async (t) => {
  const { app, store } = await testApp(t)
  for (const [open, close] of [
    ['[', ']'],
    ['{"a":', '}'],
  ] as const) {
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/kv/deep',
      payload: open.repeat(4000) + '1' + close.repeat(4000),
      headers: JSON_TYPE,
    })
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'PLX_API_TOO_DEEP')
  }
  t.equal(store.get('deep'), undefined, 'nothing stored')
  // brackets inside strings are not nesting: a shallow value full of them is stored
  const ok = await app.inject({
    method: 'PUT',
    url: '/v1/kv/shallow',
    payload: JSON.stringify({ s: '[{'.repeat(5000), q: 'a\\"[' }),
    headers: JSON_TYPE,
  })
  t.equal(ok.statusCode, 200)
  t.same(store.get('shallow')?.value, JSON.parse(ok.payload).value)
  t.equal((JSON.parse(ok.payload).value as { s: string }).s.length, 10000)
})

t.test('an over-long key or URL is named in the error, not echoed whole', async (t) => {
  const { app } = await testApp(t)
  const long = 'k'.repeat(5000)
  const res = await app.inject({ method: 'PUT', url: `/v1/kv/${long}`, payload: '1', headers: JSON_TYPE })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error, 'PLX_STORE_BAD_KEY')
  t.ok(res.body.length < 400, `reply is ${res.body.length} bytes`)
  t.match(res.json().message, /more characters/)
  const missing = await app.inject({ method: 'GET', url: `/nope/${long}` })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error, 'PLX_API_NOT_FOUND')
  t.ok(missing.body.length < 400, `404 reply is ${missing.body.length} bytes`)
})
