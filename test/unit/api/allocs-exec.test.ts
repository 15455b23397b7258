// POST /v1/allocs/<id>/exec checks its input before anything runs: a command of 1..256 arguments of
// at most 4096 characters, a timeout of 1..3600 s, a task name; an allocation this host does not run
// is 404 (the command itself runs in the runner's integration tests).
import t from 'tap'
import { testApp } from '../../helpers/components.js'

t.test('exec: bad bodies are refused, an unknown allocation is not found', async (t) => {
  const { app } = await testApp(t)
  const exec = (payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/v1/allocs/web-1/exec', payload })
  for (const [why, body] of [
    ['no command', {}],
    ['an empty command', { command: [] }],
    ['257 arguments', { command: Array.from({ length: 257 }, () => 'x') }],
    ['an argument past 4096 characters', { command: ['echo', 'x'.repeat(4097)] }],
    ['a timeout of 0', { command: ['true'], timeoutSeconds: 0 }],
    ['a timeout past an hour', { command: ['true'], timeoutSeconds: 3601 }],
    ['a bad task name', { command: ['true'], task: '../x' }],
    ['an unknown field', { command: ['true'], tty: true }],
  ] as const) {
    const res = await exec(body)
    t.equal(res.statusCode, 400, why)
    t.equal(res.json().error, 'PLX_API_BAD_REQUEST', why)
  }
  const res = await exec({ command: ['true'], timeoutSeconds: 5 })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_RUNNER_ALLOC_NOT_FOUND')
})
