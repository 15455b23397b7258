// A tier of a request chain, run as a task by the scheduler's zone test, and the client that times
// requests through it.
//   node chain.js serve PORT [NEXT_URL]  answers each request after one request of its own to NEXT_URL
//                                        (a fresh connection each time, as a service without a pool)
//   node chain.js ask URL N              N requests one after another; prints {"ms":[...]} per request
import { createServer, request } from 'node:http'

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () =>
        (res.statusCode ?? 500) < 300
          ? resolve(body)
          : reject(new Error(`${url}: ${res.statusCode} ${body}`)),
      )
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)))
    req.on('error', reject)
    req.end()
  })
}

const [mode, a, b] = process.argv.slice(2)
if (mode === 'serve') {
  createServer((_req, res) => {
    ;(b ? get(b) : Promise.resolve('end'))
      .then((downstream) => {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end(`${process.env.PLEXUS_HOST ?? '?'} ${downstream}`)
      })
      .catch((err: Error) => {
        res.writeHead(502)
        res.end(err.message)
      })
  }).listen(Number(a))
} else if (mode === 'ask') {
  const ms: number[] = []
  const paths = new Map<string, number>()
  for (let i = 0; i < Number(b); i++) {
    const t0 = performance.now()
    const path = await get(a as string)
    ms.push(performance.now() - t0)
    paths.set(path, (paths.get(path) ?? 0) + 1)
  }
  process.stdout.write(`${JSON.stringify({ ms, paths: Object.fromEntries(paths) })}\n`)
} else {
  process.stderr.write('usage: chain.js serve PORT [NEXT_URL] | ask URL N\n')
  process.exitCode = 2
}
