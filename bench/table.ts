// Rewrites the performance table in README.md from bench/results/*.json
// (`make bench` runs it after the benches). With --check it changes nothing
// and exits 1 when the README's table is not what the results give.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from './lib/report.js'
import { loadResults, renderTable, spliceTable } from './lib/table.js'

function main(): void {
  const file = join(REPO, 'README.md')
  const readme = readFileSync(file, 'utf8')
  const next = spliceTable(readme, renderTable(loadResults()))
  if (process.argv.includes('--check')) {
    if (next !== readme) {
      process.stderr.write(
        'README.md performance table differs from bench/results: run `node dist/bench/table.js`\n',
      )
      process.exit(1)
    }
    return
  }
  if (next !== readme) writeFileSync(file, next)
  process.stderr.write('README.md performance table written from bench/results\n')
}

main()
