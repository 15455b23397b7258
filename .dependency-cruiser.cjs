// Import rules for src/ and cni/, checked by `make lint` (dependency-cruiser).
// Floors, lowest first (ARCHITECTURE.md): a module imports only from its own
// floor or below; src/agent alone is on top and nothing imports it. Type-only
// imports count too (tsPreCompilationDeps), so a contract cannot hide a cycle.
const floor = (name, above) => ({
  name: `floor-${name}`,
  comment: `${name} is below ${above.join(', ')}: it may not import them`,
  severity: 'error',
  from: { path: `^src/(${name})/` },
  to: { path: `^src/(${above.join('|')})/` },
})

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle ties modules into one knot: move the shared contract down a floor',
      severity: 'error',
      from: { path: '^(src|cni)/' },
      to: { circular: true },
    },
    {
      name: 'agent-on-top',
      comment: 'src/agent is the composition root: nothing imports it',
      severity: 'error',
      from: { path: '^(src|cni)/', pathNot: '^src/agent/' },
      to: { path: '^src/agent/' },
    },
    {
      name: 'module-on-a-floor',
      comment: 'a new src/ folder must be given its floor here (and in src/lib/README.md) before it imports anything',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: '^src/(lib|store|cluster|ipam|datapath|dns|ports|services|scheduler|traffic|endpoints|runner|diag|api|cli|ui|agent)/',
      },
      to: {},
    },
    floor('lib', ['store', 'cluster', 'ipam', 'datapath', 'dns', 'ports', 'services', 'scheduler', 'traffic', 'endpoints', 'runner', 'diag', 'api', 'cli']),
    floor('store', ['cluster', 'ipam', 'datapath', 'dns', 'ports', 'services', 'scheduler', 'traffic', 'endpoints', 'runner', 'diag', 'api', 'cli']),
    floor('cluster', ['ipam', 'datapath', 'dns', 'ports', 'services', 'scheduler', 'traffic', 'endpoints', 'runner', 'diag', 'api', 'cli']),
    floor('ipam', ['datapath', 'dns', 'ports', 'services', 'scheduler', 'traffic', 'endpoints', 'runner', 'diag', 'api', 'cli']),
    floor('datapath|dns|ports|services|scheduler|traffic', ['endpoints', 'runner', 'diag', 'api', 'cli']),
    floor('endpoints|runner', ['diag', 'api', 'cli']),
    floor('diag', ['api', 'cli']),
    floor('api', ['cli']),
    {
      name: 'kernel-effects-in-the-datapath',
      comment:
        'the datapath owns every kernel effect (veths, the container side, sysctls, the socket table): endpoints/ and ports/ reach the kernel only through the interfaces it hands them (attach.ts, sockets.ts), never through netlink themselves',
      severity: 'error',
      from: { path: '^src/(endpoints|ports)/' },
      to: { path: '^(src/datapath/(netlink|kernel)\\.ts$|src/lib/sock-diag\\.ts$|node_modules/netlink/)' },
    },
    {
      name: 'api-contract-stands-alone',
      comment: 'src/api/contract is what plexctl, the CNI plugin and the UI import: TypeBox schemas only, no agent code behind them (the record shapes it shows come from src/store/schemas.ts, schemas only too; limits from the addressing leaf)',
      severity: 'error',
      from: { path: '^src/(api/contract/|store/schemas\\.ts$)' },
      to: { path: '^src/', pathNot: '^src/(api/contract/|lib/(schema|addressing)\\.ts$|store/schemas\\.ts$)' },
    },
    {
      name: 'cli-loads-no-agent-code',
      comment: 'plexctl imports only the API contract: types from the modules, code from src/cli and src/lib',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/', pathNot: '^src/(cli|lib)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'ui-imports-only-the-contract',
      comment: 'the web UI runs in a browser: code from src/ui and npm packages, and only types from the API contract (values would bundle TypeBox)',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/', pathNot: '^src/ui/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'nothing-imports-the-ui',
      comment: 'src/ui is bundled for the browser apart from the agent: the agent serves its files, never its code',
      severity: 'error',
      from: { path: '^(src|cni)/', pathNot: '^src/ui/' },
      to: { path: '^src/ui/' },
    },
    {
      name: 'ui-types-from-the-contract-only',
      comment: 'the web UI takes types only from src/api/contract, never from agent modules',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/', pathNot: '^src/(ui|api/contract)/' },
    },
    {
      name: 'cni-plugin-stays-light',
      comment:
        "the CNI plugin's start-up is its latency: no npm packages, only types from src/, and the leaves it shares with the agent (they import nothing): the host-namespace check, the addressing rules",
      severity: 'error',
      from: { path: '^cni/' },
      to: {
        dependencyTypesNot: ['type-only', 'core'],
        pathNot: '^(cni/|src/lib/(host-netns|addressing)\\.ts$)',
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // npm packages are left out, but for netlink: kernel-effects-in-the-datapath names it
    exclude: { path: '^(dist|node_modules/(?!netlink/))' },
  },
}
