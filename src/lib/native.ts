// Loads Plexus's native addons (native/README.md) from dist/native/, where
// `npm run build:native` puts them, once each.
import { createRequire } from 'node:module'
import { errorMessage, PlexusError } from './errors.js'

const loaded = new Map<string, unknown>()

/** The addon `<name>.node`; a PlexusError with `code` when it cannot be loaded. */
export function loadAddon<T>(name: string, code: string): T {
  let addon = loaded.get(name)
  if (addon === undefined) {
    const path = new URL(`../../native/${name}.node`, import.meta.url).pathname
    try {
      addon = createRequire(import.meta.url)(path)
    } catch (err) {
      throw new PlexusError(
        code,
        `native addon ${name} not loadable (${path}): ${errorMessage(err)}; run "npm run build:native"`,
      )
    }
    loaded.set(name, addon)
  }
  return addon as T
}
