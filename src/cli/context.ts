import type { Command } from 'commander'
import type { ApiClient } from './client.js'
import type { OutputFormat } from './output.js'

/** What every plexctl command gets: the API client and the chosen output format. */
export interface CliContext {
  client(): ApiClient
  format(): OutputFormat
  print(text: string): void
}

/** Each file under commands/ exports one of these; main.ts registers them in order. */
export type RegisterCommand = (program: Command, ctx: CliContext) => void
