// Long pure computations written as generators that `yield` between units of
// work, so one caller can run them at once (tests, start-up) and another in
// slices that leave the event loop free between them (the DNS zone rebuild:
// at 50,000 records a rebuild blocked answers for a second, issue 22/18).

export type Steps<T> = Generator<void, T, void>

/** how many units of work pass between two yields: a yield costs, so not every unit yields */
export const STEP_EVERY = 256

/** Runs steps to the end at once. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/** Runs steps, giving the event loop a turn (setImmediate) whenever a slice has run sliceMs. */
export function runSliced<T>(steps: Steps<T>, sliceMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const slice = (): void => {
      const until = performance.now() + sliceMs
      try {
        for (;;) {
          const r = steps.next()
          if (r.done) {
            resolve(r.value)
            return
          }
          if (performance.now() >= until) {
            setImmediate(slice)
            return
          }
        }
      } catch (err) {
        reject(err)
      }
    }
    slice()
  })
}
