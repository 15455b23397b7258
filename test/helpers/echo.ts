// A tiny TCP+UDP server that answers each client with the address it sees
// the client at, and its client. Run inside the fixture's namespaces:
//   node echo.js serve TCPPORT UDPPORT
//   node echo.js ask tcp|udp HOST PORT   (prints the answer; exit 1 after 3 s without one)
import { createSocket } from 'node:dgram'
import { connect, createServer } from 'node:net'

const [mode, ...args] = process.argv.slice(2)

if (mode === 'serve') {
  const [tcp, udp] = args.map(Number)
  createServer((s) => s.end(`tcp ${s.remoteAddress}\n`)).listen(tcp, '0.0.0.0')
  const u = createSocket('udp4')
  u.on('message', (_msg, peer) => u.send(`udp ${peer.address}\n`, peer.port, peer.address))
  u.bind(udp, '0.0.0.0')
} else if (mode === 'ask') {
  const [proto, host = '', port = ''] = args
  setTimeout(() => {
    process.stderr.write(`no ${proto} answer from ${host}:${port}\n`)
    process.exit(1)
  }, 3000).unref()
  const done = (text: string) => {
    process.stdout.write(text)
    process.exit(0)
  }
  if (proto === 'tcp') {
    let text = ''
    const s = connect(Number(port), host)
    s.on('data', (d) => {
      text += d
    })
    s.on('end', () => done(text))
    s.on('error', (err) => {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    })
  } else {
    const u = createSocket('udp4')
    u.on('message', (msg) => done(msg.toString()))
    // a datagram may race the rules or the neighbour lookup: ask again until the deadline
    const send = () => u.send('?', Number(port), host)
    send()
    setInterval(send, 500).unref()
    u.ref()
  }
} else {
  process.stderr.write('usage: echo serve TCPPORT UDPPORT | echo ask tcp|udp HOST PORT\n')
  process.exit(2)
}
