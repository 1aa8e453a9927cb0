/**
 * Runs in the lab's wan namespace: on `go`, connects to --address:--port over TCP every few
 * milliseconds until the listener behind the mapping answers --token, then reports the wall time
 * (performance.timeOrigin + now, comparable with the parent's). Gives up after --limit ms.
 */
import { connect } from 'node:net'
import { command, fatal, parseArgs, send } from './io.js'

const args = parseArgs(process.argv.slice(2))
const limitMs = Number(args.limit ?? 10_000)

/**
 * Every attempt from its own source port: a refused attempt leaves a conntrack entry in the
 * gateway, made before the mapping existed (no DNAT); an attempt that reused its 4-tuple would
 * be matched to that entry and refused again even with the mapping back.
 */
let nextLocalPort = 40000

async function attempt (): Promise<string> {
  const localPort = nextLocalPort
  nextLocalPort = nextLocalPort >= 59999 ? 40000 : nextLocalPort + 1
  return await new Promise((resolve) => {
    let data = ''
    const socket = connect({ port: Number(args.port), host: args.address!, localPort })
    const timer = setTimeout(() => { socket.destroy(); resolve('') }, 300)
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { data += d })
    socket.on('end', () => { clearTimeout(timer); resolve(data.trim()) })
    socket.on('error', () => { clearTimeout(timer); resolve('') })
  })
}

try {
  await command()
  const start = performance.now()
  let attempts = 0
  for (;;) {
    attempts++
    const answer = await attempt()
    if (answer === args.token) {
      send({ type: 'reachable', at: performance.timeOrigin + performance.now(), attempts })
      break
    }
    if (performance.now() - start > limitMs) {
      send({ type: 'reachable', at: undefined, attempts })
      break
    }
    await new Promise((resolve) => { setTimeout(resolve, 5) })
  }
} catch (err) {
  fatal(err)
}
process.exit(0)
