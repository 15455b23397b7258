// The three kinds of health check, as effects: each resolves to a result and never throws.
import { request } from 'node:http'
import { connect } from 'node:net'
import { errorMessage } from '../lib/errors.js'
import { type Ran, run } from '../lib/spawn.js'
import type { CheckSpec, PortSpec } from '../store/records.js'

export interface CheckTarget {
  ipv4: string
  /** the endpoint's network namespace path (exec checks run inside it) */
  netns?: string
  ports: PortSpec[]
}

export interface CheckResult {
  ok: boolean
  output: string
}

const MAX_OUTPUT = 256

function portOf(spec: CheckSpec, target: CheckTarget): number | undefined {
  if (typeof spec.port === 'number') return spec.port
  return target.ports.find((p) => p.name === spec.port)?.port
}

export function runCheck(spec: CheckSpec, target: CheckTarget): Promise<CheckResult> {
  if (spec.type === 'exec') return execCheck(spec, target)
  const port = portOf(spec, target)
  if (port === undefined)
    return Promise.resolve({ ok: false, output: `no port named "${spec.port}" on the endpoint` })
  return spec.type === 'tcp'
    ? tcpCheck(target.ipv4, port, spec.timeoutMs)
    : httpCheck(spec, target.ipv4, port)
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const s = connect({ host, port })
    const done = (r: CheckResult): void => {
      clearTimeout(timer)
      s.destroy()
      resolve(r)
    }
    const timer = setTimeout(
      () => done({ ok: false, output: `tcp ${host}:${port}: timeout after ${timeoutMs} ms` }),
      timeoutMs,
    )
    s.on('connect', () => done({ ok: true, output: `tcp ${host}:${port}: connected` }))
    s.on('error', (err) => done({ ok: false, output: `tcp ${host}:${port}: ${err.message}` }))
  })
}

function httpCheck(spec: CheckSpec, host: string, port: number): Promise<CheckResult> {
  const path = spec.path ?? '/'
  const url = `http://${host}:${port}${path}`
  return new Promise((resolve) => {
    let settled = false
    const done = (r: CheckResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve(r)
    }
    const req = request({ host, port, path, method: 'GET', agent: false }, (res) => {
      const code = res.statusCode ?? 0
      res.resume()
      const ok = spec.status === undefined ? code >= 200 && code < 300 : code === spec.status
      done({ ok, output: `GET ${url}: ${code}${ok ? '' : ` (want ${spec.status ?? '2xx'})`}` })
    })
    const timer = setTimeout(
      () => done({ ok: false, output: `GET ${url}: timeout after ${spec.timeoutMs} ms` }),
      spec.timeoutMs,
    )
    req.on('error', (err) => done({ ok: false, output: `GET ${url}: ${err.message}` }))
    req.end()
  })
}

/**
 * Runs the command inside the endpoint's network namespace with nsenter (a
 * child process: the agent never switches namespace for this), started with
 * posix_spawn (src/lib/spawn.ts): checks run every few seconds per member,
 * and a fork of the agent held its main thread, DNS answers included.
 */
async function execCheck(spec: CheckSpec, target: CheckTarget): Promise<CheckResult> {
  if (!target.netns) return { ok: false, output: 'endpoint has no network namespace path' }
  const argv = [`--net=${target.netns}`, '--', ...(spec.command ?? [])]
  let r: Ran
  try {
    r = await run('nsenter', argv, { timeoutMs: spec.timeoutMs, maxOutput: MAX_OUTPUT })
  } catch (err) {
    return { ok: false, output: `exec: ${errorMessage(err)}` }
  }
  const text = r.output.trim()
  if (r.timedOut)
    return { ok: false, output: `exec: killed after ${spec.timeoutMs} ms timeout ${text}`.trim() }
  if (r.signal) return { ok: false, output: `exec: killed by ${r.signal}${text ? `: ${text}` : ''}` }
  return { ok: r.code === 0, output: `exec: exit ${r.code}${text ? `: ${text}` : ''}` }
}
