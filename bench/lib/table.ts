// The README's performance table, rendered from bench/results/*.json only: a
// figure the README shows is a field some result file holds, with that run's
// date and machine, and each goal is shown as met or missed by the number
// itself. Benches and fields this file does not know are listed too (as
// "other figures"), so a new bench or field never needs this file first.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from './report.js'

export type Result = Record<string, unknown> & { bench: string }

interface Goal {
  op: '<=' | '>=' | '='
  value: number
}

/** One row: a figure, where its value comes from, and the goal it is held to. */
interface Row {
  label: string
  /** the field(s) shown as "Plexus"; several are joined with " / " */
  fields: string[]
  unit: string
  /** the reference's field(s) and what it is */
  ref?: { fields: string[]; name: string }
  ratio?: string
  goal?: Goal & { field: string }
}

const ROWS: Record<string, Row[]> = {
  overlay: [
    {
      label: 'container→container across 2 hosts, vxlan (iperf3, interleaved with the underlay)',
      fields: ['vxlan_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['underlay_gbps'], name: 'underlay host→host' },
      ratio: 'vxlan_ratio',
    },
    {
      label: 'vxlan against kernel VXLAN made by hand between the same hosts (vxlan_limit_method)',
      fields: ['vxlan_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['vxlan_limit_gbps'], name: 'hand-made VXLAN host→host' },
      ratio: 'vxlan_limit_ratio',
      // issue 20 item 5
      goal: { field: 'vxlan_limit_ratio', op: '>=', value: 0.97 },
    },
    {
      label: 'vxlan against the same hand-made VXLAN with a bridge, veth and namespace each side, no rules',
      fields: ['vxlan_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['vxlan_limit_ctr_gbps'], name: 'hand-made VXLAN container→container' },
      ratio: 'vxlan_limit_ctr_ratio',
    },
    {
      label: 'hand-made VXLAN host→host on the underlay raised to MTU 9,000 (tunnel 8,950)',
      fields: ['vxlan_limit_jumbo_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['underlay_jumbo_gbps'], name: 'underlay at MTU 9,000' },
    },
    {
      label: 'container→container across 2 hosts, host-gw',
      fields: ['hostgw_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['underlay_gbps'], name: 'underlay host→host' },
      ratio: 'hostgw_ratio',
    },
    {
      label: 'container→container across 2 hosts, WireGuard (wireguard_method)',
      fields: ['wireguard_gbps'],
      unit: 'Gbit/s',
      ref: { fields: ['underlay_gbps'], name: 'underlay host→host' },
      ratio: 'wireguard_ratio',
      // issue 17: userspace WireGuard at 0.3 × the underlay on these machines
      goal: { field: 'wireguard_ratio', op: '>=', value: 0.3 },
    },
    {
      label: 'WireGuard CPU per Gbit carried (method: wireguard_cpu_method)',
      fields: ['wireguard_cpu_s_per_gbit'],
      unit: 'CPU s/Gbit',
    },
    {
      label: 'new host → its routes programmed on every other host, p50 / p99 (method: routes_method)',
      fields: ['routes_p50_ms', 'routes_p99_ms'],
      unit: 'ms',
      goal: { field: 'routes_p99_ms', op: '<=', value: 1000 },
    },
    {
      label: '1,000 remote leases programmed on one host',
      fields: ['program_1000_ms'],
      unit: 'ms',
      goal: { field: 'program_1000_ms', op: '<=', value: 1000 },
    },
  ],
  dns: [
    {
      label: 'max queries/s, dnsperf (interleaved with dnsmasq)',
      fields: ['plexus_qps'],
      unit: 'qps',
      ref: { fields: ['dnsmasq_qps'], name: 'dnsmasq' },
      ratio: 'qps_ratio',
      goal: { field: 'qps_ratio', op: '>=', value: 0.9 },
    },
    {
      label: 'latency at a fixed 20k qps, p50 / p99',
      fields: ['p50_ms_at_20k', 'p99_ms_at_20k'],
      unit: 'ms',
      ref: { fields: ['dnsmasq_p50_ms_at_20k', 'dnsmasq_p99_ms_at_20k'], name: 'dnsmasq' },
    },
    {
      label: 'loss at 20k qps',
      fields: ['loss'],
      unit: '',
      ref: { fields: ['dnsmasq_loss'], name: 'dnsmasq' },
    },
    { label: 'RSS of the DNS process', fields: ['rss_mb'], unit: 'MB' },
    {
      label: 'whole agent, max queries/s, dnsperf (interleaved with dnsmasq; agent_method)',
      fields: ['agent_qps'],
      unit: 'qps',
      ref: { fields: ['agent_dnsmasq_qps'], name: 'dnsmasq, same path' },
      ratio: 'agent_qps_ratio',
      // issue 20 item 4
      goal: { field: 'agent_qps_ratio', op: '>=', value: 1.3 },
    },
    {
      label: 'whole agent, latency at a fixed 20k qps, p50 / p99',
      fields: ['agent_p50_ms_at_20k', 'agent_p99_ms_at_20k'],
      unit: 'ms',
      ref: {
        fields: ['agent_dnsmasq_p50_ms_at_20k', 'agent_dnsmasq_p99_ms_at_20k'],
        name: 'dnsmasq, same path',
      },
      ratio: 'agent_p99_ratio',
      goal: { field: 'agent_p99_ratio', op: '<=', value: 2 },
    },
    {
      label: 'whole agent, loss at 20k qps',
      fields: ['agent_loss'],
      unit: '',
      ref: { fields: ['agent_dnsmasq_loss'], name: 'dnsmasq, same path' },
    },
    {
      label: 'whole agent: its CPU before the load (gossip, timers, checks), and under it',
      fields: ['agent_idle_cpu_pct', 'agent_cpu_pct'],
      unit: '% of a core',
    },
  ],
  cni: [
    {
      label: 'ADD, median (p95 after it), with a published port',
      fields: ['plexus_add_ms', 'plexus_add_p95_ms'],
      unit: 'ms',
      ref: { fields: ['ref_add_ms', 'ref_add_p95_ms'], name: 'ref_chain' },
      ratio: 'add_ratio',
      // issue 20's goals (wave 1's were 0.8 for both)
      goal: { field: 'add_ratio', op: '<=', value: 0.5 },
    },
    {
      label: 'DEL, median (p95 after it), same runs',
      fields: ['plexus_del_ms', 'plexus_del_p95_ms'],
      unit: 'ms',
      ref: { fields: ['ref_del_ms', 'ref_del_p95_ms'], name: 'ref_chain' },
      ratio: 'del_ratio',
      goal: { field: 'del_ratio', op: '<=', value: 0.3 },
    },
    {
      label: 'ADD / DEL without a published port, same runs',
      fields: ['plexus_noport_add_ms', 'plexus_noport_del_ms'],
      unit: 'ms',
    },
    {
      label: 'VERSION: native front end through the agent, then the Node plugin alone',
      fields: ['plugin_version_ms', 'node_plugin_version_ms'],
      unit: 'ms',
    },
  ],
  runner: [
    {
      label:
        '100 tasks (one group with a service) on 5 hosts: `plexctl job run` → all running and answered by DNS',
      fields: ['plexus_s'],
      unit: 's',
      ref: { fields: ['podman_s'], name: '100 × `podman run -d` on one host, one after the other' },
      ratio: 'ratio',
      // issue 13: Plexus ≤ 0.5 × podman's time
      goal: { field: 'ratio', op: '<=', value: 0.5 },
    },
  ],
  watchers: [
    {
      label:
        '1,000 watchers on one agent (half SSE, half blocking reads): a write → every watcher, p50 / p99',
      fields: ['plexus_p50_ms', 'plexus_p99_ms'],
      unit: 'ms',
      ref: { fields: ['etcd_p50_ms', 'etcd_p99_ms'], name: 'etcd, one member, as many watch streams' },
      ratio: 'p99_ratio',
    },
    {
      label: '1,000 watchers: p99 of a write reaching all of them',
      fields: ['plexus_p99_ms'],
      unit: 'ms',
      // issue 14: p99 ≤ 200 ms
      goal: { field: 'plexus_p99_ms', op: '<=', value: 200 },
    },
  ],
  scheduler: [
    {
      label:
        'placements/s, 10,000 allocations (1,000 jobs of two 5-slot groups, constraints, talksTo) on 1,000 simulated hosts, one process',
      fields: ['placements_per_s'],
      unit: '/s',
      goal: { field: 'placements_per_s', op: '>=', value: 5000 },
    },
    {
      label: 'traffic-weighted RTT of a 40-service graph (~100 allocations) on 1,000 hosts in 10 zones',
      fields: ['cost_plexus_ms'],
      unit: 'ms',
      ref: { fields: ['cost_spread_ms'], name: 'plain spread placement' },
      ratio: 'cost_ratio_vs_spread',
      goal: { field: 'cost_ratio_vs_spread', op: '<=', value: 0.55 },
    },
    {
      label: 'same graph, against random feasible hosts',
      fields: ['cost_plexus_ms'],
      unit: 'ms',
      ref: { fields: ['cost_random_ms'], name: 'random' },
      ratio: 'cost_ratio_vs_random',
    },
    {
      label: 'network cost above the exhaustive optimum, small instances, mean (local search alone after it)',
      fields: ['optimality_gap', 'heuristic_gap'],
      unit: '',
      goal: { field: 'optimality_gap', op: '<=', value: 0.05 },
    },
  ],
  converge: [
    {
      label: 'write on one host until all 10 hosts hold it, p50 / p99 (the systems alternated)',
      fields: ['write_p50_ms', 'write_p99_ms'],
      unit: 'ms',
      ref: {
        fields: ['etcd_write_p50_ms', 'etcd_write_p99_ms'],
        name: 'etcd, 3 members, an etcdctl watch on each host',
      },
      ratio: 'write_p99_ratio',
      // issue 20: against etcd in the same run (an absolute p99 on a shared machine is no contract)
      goal: { field: 'write_p99_ratio', op: '<=', value: 1 },
    },
    {
      label: "CPU seconds per 1,000 of those writes, all of a system's servers (10 agents; 3 members)",
      fields: ['cpu_s_per_1000_writes'],
      unit: 'CPU s',
      ref: { fields: ['etcd_cpu_s_per_1000_writes'], name: 'etcd' },
      ratio: 'cpu_ratio',
      goal: { field: 'cpu_ratio', op: '<=', value: 1 },
    },
    {
      label: 'agent CPU while idle (10 s, after the writes and a 5 s pause), max (median) over the hosts',
      fields: ['idle_cpu_pct', 'idle_cpu_median_pct'],
      unit: '% of a core',
      goal: { field: 'idle_cpu_pct', op: '<=', value: 1 },
    },
    {
      label: 'new host (fresh identity) holds the full store: process start → first full sync',
      fields: ['join_ms'],
      unit: 'ms',
      goal: { field: 'join_ms', op: '<=', value: 2000 },
    },
    {
      label: 'simulator: one write reaches half / all hosts (simulated seconds)',
      fields: ['sim_half_s', 'sim_converge_s'],
      unit: 's',
    },
    {
      label: 'simulator: all hosts hold the same map after a partition heals',
      fields: ['sim_heal_s'],
      unit: 's',
    },
    {
      label: 'agent RSS, max (median) over the hosts',
      fields: ['rss_mb', 'rss_median_mb'],
      unit: 'MB',
      // issue 20: a lighter agent
      goal: { field: 'rss_mb', op: '<=', value: 110 },
    },
    // issue 22 item 3: the size run, 5 agents holding big_records records
    {
      label:
        'size run (5 agents, 50,000 records): agent RSS 65 s after the agents settled (memory release run six times), max (median) over the hosts',
      fields: ['big_rss_mb', 'big_rss_median_mb'],
      unit: 'MB',
      goal: { field: 'big_rss_mb', op: '<=', value: 250 },
    },
    {
      label:
        'size run: a 6th host (fresh identity) joins: process start → first full sync (→ every record, from `join`)',
      fields: ['big_join_ms', 'big_join_total_ms'],
      unit: 'ms',
      goal: { field: 'big_join_ms', op: '<=', value: 10000 },
    },
    {
      label: "size run: a new service name written on h1 until every host's DNS answers it, p50 / p99",
      fields: ['big_write_p50_ms', 'big_write_p99_ms'],
      unit: 'ms',
      ref: { fields: ['write_p50_ms', 'write_p99_ms'], name: "the 10-host run's write (same run)" },
      ratio: 'big_write_p99_ratio',
      goal: { field: 'big_write_p99_ratio', op: '<=', value: 2 },
    },
    {
      label:
        "size run: the agents' zone update during those writes (plexus_dns_zone_update_seconds), p99 (mean)",
      fields: ['big_zone_rebuild_ms', 'big_zone_rebuild_mean_ms'],
      unit: 'ms',
      goal: { field: 'big_zone_rebuild_ms', op: '<=', value: 100 },
    },
  ],
  chaos: [
    {
      label: 'invariant violations',
      fields: ['violations'],
      unit: '',
      goal: { field: 'violations', op: '=', value: 0 },
    },
    {
      label: 'agents that died unasked',
      fields: ['crashes'],
      unit: '',
      goal: { field: 'crashes', op: '=', value: 0 },
    },
    {
      label: 'faults injected (kinds in the JSON line), minutes of the run',
      fields: ['faults', 'minutes'],
      unit: '',
    },
    {
      label: 'longest loss of reachability between live containers, any fault',
      fields: ['longest_outage_s'],
      unit: 's',
    },
    { label: 'hostile inputs sent (DNS, API, CNI, gossip)', fields: ['fuzz_inputs'], unit: '' },
    {
      label: "a container's own name from its host's DNS, p50 / max, in the same rounds",
      fields: ['dns_p50_ms', 'dns_max_ms'],
      unit: 'ms',
      ref: { fields: ['ref_dns_p50_ms', 'ref_dns_max_ms'], name: "the fixture's stub DNS, same machine" },
    },
    {
      label: 'agent RSS growth (largest of any agent life of 3 min or more)',
      fields: ['rss_growth_mb_per_h'],
      unit: 'MB/h',
    },
  ],
}

/** Fields that describe the run, not a figure. */
const RUN_FIELDS = new Set(['bench', 'runs', 'date', 'machine_cores', 'machine_model', 'load_avg_1m', 'node'])

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

function fmt(r: Result, fields: string[], unit: string): string | undefined {
  const vs = fields.map((f) => r[f])
  if (!vs.some(num)) return undefined
  const text = vs.map((v) => (num(v) ? String(v) : '–'))
  return unit ? `${text.join(' / ')} ${unit}` : text.join(' / ')
}

function goalText(r: Result, g: Row['goal']): string {
  if (!g) return ''
  const v = r[g.field]
  const want = `${g.op === '=' ? '=' : g.op === '<=' ? '≤' : '≥'} ${g.value}`
  if (!num(v)) return `${want}: not measured`
  const met = g.op === '<=' ? v <= g.value : g.op === '>=' ? v >= g.value : v === g.value
  return `${want}: **${met ? 'met' : 'missed'}**`
}

function runText(r: Result): string {
  const when = typeof r.date === 'string' ? r.date : 'date not recorded'
  const cores = num(r.machine_cores) ? `${r.machine_cores} cores` : undefined
  const model = typeof r.machine_model === 'string' ? r.machine_model : undefined
  const load = num(r.load_avg_1m) ? `load ${r.load_avg_1m}` : undefined
  const machine = cores || model ? [cores, model, load].filter(Boolean).join(', ') : 'machine not recorded'
  const runs = num(r.runs) ? `; ${r.runs} runs` : ''
  return `${when}; ${machine}${runs}`
}

const cell = (s: string) => s.replace(/\|/g, '\\|')

/** The table (markdown) for these results, one run per bench, benches in name order. */
export function renderTable(results: Result[]): string {
  const lines = [
    '| bench | figure | Plexus | reference | ratio | goal | run (date; machine; runs) |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const r of [...results].sort((a, b) => a.bench.localeCompare(b.bench))) {
    const used = new Set<string>()
    const rows = ROWS[r.bench] ?? []
    for (const row of rows) {
      const plexus = fmt(r, row.fields, row.unit)
      if (plexus === undefined) continue
      for (const f of [...row.fields, ...(row.ref?.fields ?? []), row.ratio ?? '', row.goal?.field ?? ''])
        used.add(f)
      const refName =
        row.ref && typeof r[row.ref.name] === 'string' ? (r[row.ref.name] as string) : row.ref?.name
      if (row.ref && typeof r[row.ref.name] === 'string') used.add(row.ref.name)
      const ref = row.ref ? fmt(r, row.ref.fields, row.unit) : undefined
      const ratio = row.ratio && num(r[row.ratio]) ? String(r[row.ratio]) : ''
      // a label may name a string field of the run (how it was measured): shown as the run says
      const label = row.label.replace(/\b([a-z0-9_]+_method)\b/g, (f) => {
        if (typeof r[f] !== 'string') return 'not recorded'
        used.add(f)
        return r[f] as string
      })
      lines.push(
        `| ${[r.bench, label, plexus, ref ? `${refName}: ${ref}` : '', ratio, goalText(r, row.goal), runText(r)].map(cell).join(' | ')} |`,
      )
    }
    const other = Object.entries(r)
      // a JSON text (bench/chaos's counts by kind) is detail for the result file, not a figure
      .filter(
        ([k, v]) =>
          !RUN_FIELDS.has(k) && !used.has(k) && (num(v) || (typeof v === 'string' && !/^[[{]/.test(v))),
      )
      .map(([k, v]) => `${k} ${v}`)
    if (other.length)
      lines.push(
        `| ${[r.bench, 'other figures', other.join(', '), '', '', '', runText(r)].map(cell).join(' | ')} |`,
      )
  }
  return `${lines.join('\n')}\n`
}

export const TABLE_START =
  '<!-- bench-table: generated by `node dist/bench/table.js` from bench/results/*.json -->'
export const TABLE_END = '<!-- bench-table end -->'

/** The README with the text between the markers replaced by the table; throws if a marker is missing. */
export function spliceTable(readme: string, table: string): string {
  const a = readme.indexOf(TABLE_START)
  const b = readme.indexOf(TABLE_END)
  if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${TABLE_START} … ${TABLE_END}`)
  return `${readme.slice(0, a + TABLE_START.length)}\n\n${table}\n${readme.slice(b)}`
}

/** The last JSON line of each result file (the bench's report line). */
export function loadResults(dir = join(REPO, 'bench/results')): Result[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const lines = readFileSync(join(dir, f), 'utf8').trim().split('\n')
      const r = JSON.parse(lines.at(-1) ?? '') as Result
      if (typeof r.bench !== 'string') throw new Error(`${f}: no "bench" field`)
      return r
    })
}
