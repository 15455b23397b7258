import { type Logger, pino } from 'pino'

export type { Logger }

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

// Structured JSON logs on stderr (journald and `cluster` fixtures capture stderr);
// `base` carries the host name so logs of many agents can be merged.
export function createLogger(opts: { level: LogLevel; host: string }): Logger {
  return pino(
    { level: opts.level, base: { host: opts.host }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: false }),
  )
}
