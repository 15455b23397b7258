// Allocations and their tasks' output.
//   GET /v1/allocs                       every allocation the cluster's hosts report (?job= to narrow)
//   GET /v1/allocs/:id/logs              a task's output on this host (?task=&tail=&follow=)
import { PassThrough } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { followLogs, readLogs } from '../../runner/logs.js'
import type { RunnerService } from '../../runner/service.js'
import type { AllocStateValue } from '../../scheduler/records.js'
import { allocStateCodec } from '../../store/codecs.js'
import { ALLOC_STATE_PREFIX } from '../../store/types.js'
import { AllocIdParam, AllocLogsQuery, AllocsQuery, AllocsReply } from '../contract/jobs.js'
import type { ApiDeps } from '../deps.js'

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

  app.get(
    '/:id/logs',
    { schema: { params: AllocIdParam, querystring: AllocLogsQuery } },
    async (req, reply) => {
      const { id } = req.params
      const local = runner?.local(id)
      if (!local) {
        const elsewhere = allStates(deps).find((s) => s.id === id)
        if (elsewhere)
          throw new PlexusError(
            'PLX_RUNNER_NOT_HERE',
            `allocation ${id} runs on host ${elsewhere.hostName}: ask its agent (plexctl -s <its socket> logs ${id})`,
            { status: 409, host: elsewhere.hostName },
          )
        throw new PlexusError('PLX_RUNNER_ALLOC_NOT_FOUND', `no allocation "${id}"`, { status: 404 })
      }
      const names = local.tasks.map((t) => t.name)
      const task = req.query.task ?? (names.length === 1 ? names[0] : undefined)
      if (!task)
        throw new PlexusError(
          'PLX_RUNNER_TASK_REQUIRED',
          `allocation ${id} has several tasks: name one of ${names.join(', ')}`,
          {
            status: 400,
          },
        )
      if (!names.includes(task))
        throw new PlexusError(
          'PLX_RUNNER_TASK_NOT_FOUND',
          `allocation ${id} has no task "${task}" (has ${names.join(', ')})`,
          {
            status: 404,
          },
        )
      const dir = (runner as RunnerService).logDir(id, task)
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
}
