#!/usr/bin/env node
// Writes docs/openapi.json from the route schemas (src/api/document.ts), after
// `npm run build`. test/unit/api/openapi.test.ts fails while the file is stale.
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { apiDocument } = await import(join(root, 'dist/src/api/document.js'))
const out = join(root, 'docs/openapi.json')
await writeFile(out, `${JSON.stringify(await apiDocument(), null, 2)}\n`)
process.stderr.write(`wrote ${out}\n`)
