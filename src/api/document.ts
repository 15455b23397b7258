import { pino } from 'pino'
import { Metrics } from '../lib/metrics.js'
import { VERSION } from '../lib/version.js'
import { buildApp } from './app.js'

/**
 * The document for every route plexusd can serve (the optional components
 * given, so each plugin registers), as docs/openapi.json holds it. The app is
 * only built and made ready, never listens and runs no handler, so the
 * components are placeholders.
 */
export async function apiDocument(): Promise<unknown> {
  const placeholder = {} as never
  const app = await buildApp({
    config: { name: 'openapi' },
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    shutdown: new AbortController().signal,
    startedAt: new Date(0),
    version: VERSION,
    peerId: 'openapi',
    store: placeholder,
    links: placeholder,
    ports: placeholder,
    scheduler: placeholder,
    runner: placeholder,
    diag: placeholder,
  })
  try {
    await app.ready()
    return app.swagger()
  } finally {
    await app.close()
  }
}
