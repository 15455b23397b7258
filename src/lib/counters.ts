/**
 * Counters every module may bump (rejected gossip, repaired drift, ...);
 * `GET /v1/status` reports them so operators see trouble without reading logs.
 * On the ground floor so that a module counts without importing the agent.
 */
export class Counters {
  private readonly values = new Map<string, number>()
  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by)
  }
  get(name: string): number {
    return this.values.get(name) ?? 0
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.values.entries()].sort(([a], [b]) => a.localeCompare(b)))
  }
}
