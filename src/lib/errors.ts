// Typed errors with a stable code, prefixed by component (PLX_<COMPONENT>_<WHAT>).
// Tests and callers check `code`, never the message text.
export class PlexusError extends Error {
  readonly code: string
  readonly details?: unknown
  constructor(code: string, message: string, details?: unknown) {
    super(message)
    this.name = 'PlexusError'
    this.code = code
    this.details = details
  }
}

export function isPlexusError(err: unknown, code?: string): err is PlexusError {
  return err instanceof PlexusError && (code === undefined || err.code === code)
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Input quoted in an error message, cut to max characters: an over-long key
 * or path is named, never echoed back whole.
 */
export function excerpt(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`
}
