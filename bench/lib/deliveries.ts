// Arrival times of one thing (a value, a key) at many watchers: the benches
// that time a write to every watcher that should see it (watchers, converge).

/** Each watcher reports what it sees; `seen(id)` waits for every watcher to have seen it. */
export class Deliveries {
  private readonly at = new Map<string, number[]>()
  private waiters: (() => void)[] = []
  constructor(
    private readonly watchers: number,
    /** a delivery not seen within this counts as lost */
    private readonly timeoutMs = 10_000,
  ) {}

  saw(id: string): void {
    const list = this.at.get(id) ?? []
    list.push(performance.now())
    this.at.set(id, list)
    if (list.length === this.watchers) for (const w of this.waiters.splice(0)) w()
  }

  /** delivery times of id (ms after `since`, a performance.now()), waiting until all came or the timeout */
  async seen(id: string, since: number): Promise<number[]> {
    if ((this.at.get(id)?.length ?? 0) < this.watchers)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.timeoutMs)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    return (this.at.get(id) ?? []).map((t) => t - since)
  }
}
