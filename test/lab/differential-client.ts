/**
 * The lan side of the differential suite (differential.test.ts): sends requests exactly as it is
 * told, to whichever router it is told, and reports the raw answers. One JSON command per line on
 * stdin, one JSON answer per line on stdout. It knows no protocol: the bytes and the SOAP bodies
 * are built by the test, so miniupnpd and the simulators receive the same ones. Not a test file.
 */
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'

interface Command {
  id: number
  op: 'http' | 'udp'
  host: string
  port: number
  /** The source address to send from (the lan host has two). */
  from: string
  /** For http: the whole request but the Host line, which is added here. */
  method?: string
  path?: string
  headers?: Array<[string, string]>
  body?: string
  /** For udp: the datagram, and how long to collect answers. */
  hex?: string
  waitMs?: number
}

function write (value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

async function http (c: Command): Promise<{ status: number, headers: string, body: string }> {
  const body = Buffer.from(c.body ?? '', 'utf8')
  const head = [`${c.method ?? 'GET'} ${c.path ?? '/'} HTTP/1.1`, `Host: ${c.host}:${c.port}`,
    ...(c.headers ?? []).map(([k, v]) => `${k}: ${v}`),
    ...(c.method === 'POST' ? [`Content-Length: ${body.length}`] : []), 'Connection: close', '', ''].join('\r\n')
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: c.host, port: c.port, localAddress: c.from })
    const chunks: Buffer[] = []
    socket.setTimeout(5000, () => { socket.destroy(new Error('timed out')) })
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', reject)
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const split = text.indexOf('\r\n\r\n')
      const headers = split === -1 ? text : text.slice(0, split)
      let rest = split === -1 ? '' : text.slice(split + 4)
      if (/^transfer-encoding:\s*chunked/im.test(headers)) rest = unchunk(rest)
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: rest })
    })
    socket.end(Buffer.concat([Buffer.from(head, 'utf8'), body]))
  })
}

function unchunk (text: string): string {
  let out = ''
  for (let rest = text; ;) {
    const line = rest.indexOf('\r\n')
    const size = parseInt(rest.slice(0, line), 16)
    if (line === -1 || !(size > 0)) return out
    out += rest.slice(line + 2, line + 2 + size)
    rest = rest.slice(line + 4 + size)
  }
}

async function udp (c: Command): Promise<{ answers: string[] }> {
  const socket = createSocket('udp4')
  const answers: string[] = []
  await new Promise<void>((resolve) => socket.bind(0, c.from, resolve))
  // Done 30 ms after the first answer (a second one would be a difference too), or when none came.
  await new Promise<void>((resolve) => {
    const none = setTimeout(resolve, c.waitMs ?? 300)
    socket.on('message', (m) => {
      answers.push(m.toString('hex'))
      clearTimeout(none)
      setTimeout(resolve, 30)
    })
    socket.send(Buffer.from(c.hex ?? '', 'hex'), c.port, c.host)
  })
  socket.close()
  return { answers }
}

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const c = JSON.parse(line) as Command
  const run = c.op === 'http' ? http(c) : udp(c)
  run.then((r) => { write({ id: c.id, ...r }) }, (err: Error) => { write({ id: c.id, error: err.message }) })
})
write({ ready: true })
