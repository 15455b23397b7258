// CNI error codes (SPEC.md "Error"). 1-99 are the spec's well-known codes;
// 100+ are ours and documented in cni/README.md.
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  NOT_AVAILABLE_DEGRADED: 51,
  /** no free address in this host's subnet */
  NO_ADDRESS: 100,
  /** the requested static address belongs to another container */
  ADDRESS_IN_USE: 101,
  /** CHECK found the attachment differs from what ADD set up; details lists each problem */
  CHECK_FAILED: 110,
  /** the agent failed in a way it did not classify */
  INTERNAL: 999,
} as const

export class CniError extends Error {
  constructor(
    readonly code: number,
    readonly msg: string,
    readonly details = '',
  ) {
    super(msg)
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.msg }
    if (this.details) out.details = this.details
    return out
  }
}
