import { CniCode, CniError } from './errors.js'

/** Spec versions this plugin speaks, oldest first. 0.3.x and 0.4.0 share one result shape. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const
export const CURRENT_VERSION = '1.1.0'

function parts(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
}

/** Compares two "X.Y.Z" versions; throws on anything else (callers validate first). */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a)
  const pb = parts(b)
  if (!pa || !pb) throw new CniError(CniCode.DECODE, `invalid version "${!pa ? a : b}"`)
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2]
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v)
}

/**
 * The version to speak: the highest common entry of `cniVersions` when the
 * config lists several (as a 1.1.0 runtime does), else `cniVersion` itself.
 */
export function negotiateVersion(cniVersion: unknown, cniVersions: unknown): string {
  if (cniVersions !== undefined) {
    if (!Array.isArray(cniVersions) || !cniVersions.every((v) => typeof v === 'string')) {
      throw new CniError(CniCode.INVALID_CONFIG, 'field "cniVersions" must be an array of version strings')
    }
    const common = cniVersions.filter(isSupported).sort(compareVersions)
    const best = common[common.length - 1]
    if (!best) {
      throw new CniError(
        CniCode.INCOMPATIBLE_VERSION,
        `none of cniVersions ${JSON.stringify(cniVersions)} is supported`,
        `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`,
      )
    }
    return best
  }
  if (cniVersion === undefined) throw new CniError(CniCode.INVALID_CONFIG, 'field "cniVersion" is required')
  if (typeof cniVersion !== 'string')
    throw new CniError(CniCode.INVALID_CONFIG, 'field "cniVersion" must be a string')
  if (!isSupported(cniVersion)) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `incompatible CNI version "${cniVersion}"`,
      `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`,
    )
  }
  return cniVersion
}

/** Operations a spec version defines: CHECK came with 0.4.0, STATUS and GC with 1.1.0. */
export function requireVersionFor(command: string, version: string): void {
  const since = command === 'CHECK' ? '0.4.0' : command === 'STATUS' || command === 'GC' ? '1.1.0' : undefined
  if (since && compareVersions(version, since) < 0) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `${command} needs cniVersion ${since} or later, config has ${version}`,
    )
  }
}

/** The VERSION command's answer. */
export function versionInfo(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] }
}
