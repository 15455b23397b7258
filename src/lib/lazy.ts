// Work deferred from import time to first use. Why: plexusd's start-up to
// serving is what an agent restart costs (issue 18: goal 2 s of CPU), and every
// ajv validator compiled at module load (plus the ajv instance and its
// meta-schema behind it) was paid on each start whether the agent ever saw a
// job spec or a scheduler record or not: about 0.7 s of the 2 s measured.
import type { ErrorObject, ValidateFunction } from 'ajv'

/** make() run once, on the first call; its value returned on every call */
export function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined
  return () => {
    made ??= { value: make() }
    return made.value
  }
}

/** An ajv type guard whose `errors` (after a failed call) say why, as ajv's own. */
export interface Validator<T> {
  (data: unknown): data is T
  readonly errors: ErrorObject[] | null | undefined
}

/** A validator compiled by compile() on its first call instead of at import. */
export function lazyValidator<T>(compile: () => ValidateFunction<T>): Validator<T> {
  const compiled = lazy(compile)
  const check = ((data: unknown) => compiled()(data)) as Validator<T>
  Object.defineProperty(check, 'errors', { get: () => compiled().errors })
  return check
}
