// Allocations and their tasks' output.
//   GET /v1/allocs                       every allocation the cluster's hosts report (?job= to narrow)
//   GET /v1/allocs/:id/logs              a task's output on this host (?task=&tail=&follow=)
//   POST /v1/allocs/:id/exec             a command run in a task on this host, its output and exit status
import { PassThrough } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { followLogs, readLogs } from '../../runner/logs.js'
import type { AllocStateValue } from '../../scheduler/records.js'
import { allocStateCodec } from '../../store/codecs.js'
import { ALLOC_STATE_PREFIX } from '../../store/types.js'
import {
  AllocExecBody,
  AllocExecReply,
  AllocIdParam,
  AllocLogsQuery,
  AllocsQuery,
  AllocsReply,
} from '../contract/jobs.js'
import type { ApiDeps } from '../deps.js'

/** exec: the default timeout (a body's timeoutSeconds overrides), the most output kept per stream */
const EXEC_TIMEOUT_S = 60
const EXEC_MAX_OUTPUT = 1 << 20

function allStates(deps: Pick<ApiDeps, 'store'>): AllocStateValue[] {
  return deps.store
    .list(ALLOC_STATE_PREFIX)
    .flatMap((r) => {
      const s = allocStateCodec.valueOf(r)
      return s ? [s] : []
    })
    .sort(
      (a, b) => a.job.localeCompare(b.job) || a.group.localeCompare(b.group) || a.slot.localeCompare(b.slot),
    )
}

/** what the /v1/allocs routes read (registered with that prefix; the runner only where it runs) */
export type AllocsComponents = Pick<ApiDeps, 'store' | 'shutdown' | 'runner'>

export const allocRoutes: FastifyPluginAsyncTypebox<AllocsComponents> = async (app, deps) => {
  const { runner } = deps
  app.get('', { schema: { querystring: AllocsQuery, response: { 200: AllocsReply } } }, async (req) =>
    allStates(deps)
      .filter((s) => req.query.job === undefined || s.job === req.query.job)
      .map((s) => ({
        id: s.id,
        job: s.job,
        group: s.group,
        slot: s.slot,
        jobVersion: s.jobVersion,
        ...(s.replaces ? { replaces: s.replaces } : {}),
        ...(s.reschedule ? { reschedule: s.reschedule } : {}),
        host: s.host,
        hostName: s.hostName,
        status: s.status,
        restarts: s.restarts ?? 0,
        ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
        ...(s.address ? { address: s.address } : {}),
        ...(s.reason ? { reason: s.reason } : {}),
        tasks: s.tasks ?? {},
        updatedAt: s.updatedAt,
      })),
  )

  /** the runner and the task of an allocation this host runs (a group of one task needs none named) */
  const localTask = (id: string, named: string | undefined, verb: string) => {
    const local = runner?.local(id)
    if (!runner || !local) {
      const elsewhere = allStates(deps).find((s) => s.id === id)
      if (elsewhere)
        throw new PlexusError(
          'PLX_RUNNER_NOT_HERE',
          `allocation ${id} runs on host ${elsewhere.hostName}: ask its agent (plexctl -s <its socket> ${verb} ${id})`,
          { status: 409, host: elsewhere.hostName },
        )
      throw new PlexusError('PLX_RUNNER_ALLOC_NOT_FOUND', `no allocation "${id}"`, { status: 404 })
    }
    const names = local.tasks.map((t) => t.name)
    const task = named ?? (names.length === 1 ? names[0] : undefined)
    if (!task)
      throw new PlexusError(
        'PLX_RUNNER_TASK_REQUIRED',
        `allocation ${id} has several tasks: name one of ${names.join(', ')}`,
        { status: 400 },
      )
    if (!names.includes(task))
      throw new PlexusError(
        'PLX_RUNNER_TASK_NOT_FOUND',
        `allocation ${id} has no task "${task}" (has ${names.join(', ')})`,
        { status: 404 },
      )
    return { runner, task }
  }

  app.get(
    '/:id/logs',
    { schema: { params: AllocIdParam, querystring: AllocLogsQuery } },
    async (req, reply) => {
      const { id } = req.params
      const { runner, task } = localTask(id, req.query.task, 'logs')
      const dir = runner.logDir(id, task)
      const text = await readLogs(dir, req.query.tail)
      reply.type('text/plain; charset=utf-8')
      if (!req.query.follow) return text
      const out = new PassThrough()
      out.write(text)
      const stop = new AbortController()
      const end = () => stop.abort()
      req.raw.on('close', end)
      deps.shutdown.addEventListener('abort', end, { once: true })
      void followLogs(dir, (chunk) => out.write(chunk), stop.signal).finally(() => {
        deps.shutdown.removeEventListener('abort', end)
        out.end()
      })
      return reply.send(out)
    },
  )

  app.post(
    '/:id/exec',
    { schema: { params: AllocIdParam, body: AllocExecBody, response: { 200: AllocExecReply } } },
    async (req) => {
      const { id } = req.params
      const { runner, task } = localTask(id, req.body.task, 'exec')
      return runner.exec(id, task, req.body.command, {
        timeoutMs: (req.body.timeoutSeconds ?? EXEC_TIMEOUT_S) * 1000,
        maxOutputBytes: EXEC_MAX_OUTPUT,
      })
    },
  )
}
