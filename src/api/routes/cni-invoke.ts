import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type AgentResponse, AgentUnreachable, answerOf } from '../../../cni/lib/client.js'
import { CniCode } from '../../../cni/lib/errors.js'
import { invoke } from '../../../cni/lib/invoke.js'
import { InvokeRequest } from '../contract/cni.js'

// POST /v1/cni/invoke: a whole CNI invocation, as the native front end of the
// plugin (cni/front/) forwards it: the CNI_* environment, stdin as it came,
// and the container's namespace held open by the front end. The agent runs
// the plugin's own code on it (cni/lib/invoke.ts) with its calls made
// in-process, and answers with what the plugin would have printed: the exit
// status in `plexus-cni-exit`, then stderr (`plexus-cni-stderr` bytes) and
// stdout as the body. So a container start pays for no Node process, and the
// parsing, validation and result stay one piece of code.
//
// 503 tells the front end to run the Node plugin instead: a DEL the agent
// could not finish in time must still go on without it (the plugin spools
// it), and a namespace the front end did not hold open is the plugin's to report.

export const cniInvokeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/invoke', { schema: { body: InvokeRequest } }, async (req, reply) => {
    const { env, stdin, netnsHandle: handle } = req.body
    const warnings: string[] = []
    let fallBack = false
    const fallBackNow = (why: string): never => {
      fallBack = true
      throw new AgentUnreachable(CniCode.TRY_AGAIN_LATER, why)
    }
    const out = await invoke({
      env,
      stdin: () => stdin,
      call: async <T>(
        _socket: string,
        method: 'GET' | 'POST',
        url: string,
        payload?: unknown,
        timeoutMs = 30_000,
      ) => {
        // the plugin's own deadline for an answer (cni/lib/client.ts), kept in-process
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new AgentUnreachable(CniCode.TRY_AGAIN_LATER, 'plexusd did not answer in time')),
            timeoutMs,
          )
        })
        try {
          const res = await Promise.race([app.inject({ method, url, payload: payload as object }), late])
          return answerOf<T>({ status: res.statusCode, body: res.body } satisfies AgentResponse)
        } finally {
          clearTimeout(timer)
        }
      },
      // the front end opens the namespace before it asks; without it the Node plugin opens it and says why not
      openNetns: (path) => handle ?? fallBackNow(`${path} was not held open`),
      warn: (what) => warnings.push(`plexus: ${what}\n`),
      delWithoutAgent: () => fallBackNow('DEL left to the plugin'),
    })
    if (fallBack) return reply.code(503).send({ error: 'PLX_CNI_FALL_BACK', message: 'run the plugin' })
    const stderr = warnings.join('')
    return reply
      .header('plexus-cni-exit', String(out.exitCode))
      .header('plexus-cni-stderr', String(Buffer.byteLength(stderr)))
      .type('application/octet-stream')
      .send(Buffer.from(stderr + out.stdout))
  })
}
