// A bound on how long an answer may take, for work that cannot be cancelled
// (a netlink dump, a /proc walk): the caller gets `late()` once the time is
// up and the work finishes on its own, its result dropped.

/** p's value, or late()'s once ms have passed, whichever comes first; p's failure is p's */
export function within<T>(p: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms)
    timer.unref()
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
