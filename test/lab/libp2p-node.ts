/**
 * A js-libp2p node for the lab (test/lab/libp2p.test.ts), run inside a namespace; one JSON line
 * per event on stdout. Not a test file itself. Node >= 22.
 *
 *   node libp2p-node.js listen natmapper|upnp-nat <port>   listens on 0.0.0.0:<port> with that NAT
 *        service; says `started`, then `public` once the address manager holds a public address
 *        (with the time since start() was called), `public-changed` at each change after; a line
 *        `stop` on stdin stops it (`stopped`).
 *   node libp2p-node.js ping <multiaddr>                   dials it, pings once, says `ping`, exits.
 */
import { createInterface } from 'node:readline'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { multiaddr } from '@multiformats/multiaddr'
import { natmapperNat } from '../../src/libp2p/index.js'
import { classifyAddress } from '../../src/net/address-class.js'

function say (value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

function publicAddress (node: Libp2p): string | undefined {
  return node.getMultiaddrs().map(String).find((a) => {
    const host = /^\/ip4\/([\d.]+)\//.exec(a)?.[1]
    return host !== undefined && classifyAddress(host) === 'public'
  })
}

async function listen (service: string, port: number): Promise<void> {
  // Both trust their mapped address at once: there is no AutoNAT server in the lab, and the
  // time measured is the NAT service's, up to the address manager.
  const nat = service === 'natmapper' ? natmapperNat({ autoConfirmAddress: true }) : uPnPNAT({ autoConfirmAddress: true })
  const node = await createLibp2p({
    start: false,
    addresses: { listen: [`/ip4/0.0.0.0/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping(), nat }
  })
  const started = performance.now()
  await node.start()
  const startMs = performance.now() - started
  say({ event: 'started', peerId: node.peerId.toString(), startMs })
  if (service === 'natmapper') {
    // What the NAT concluded about the router's address (double NAT, CGNAT), for the lab to read.
    const watch = setInterval(() => {
      const reason = (node.services.nat as ReturnType<ReturnType<typeof natmapperNat>>).nat?.notPublicReason
      if (reason === undefined) return
      clearInterval(watch)
      say({ event: 'not-public', reason, ms: performance.now() - started })
    }, 2)
    watch.unref()
  }
  // `public` once the first public address is there, then `public-changed` at each change after.
  let seen: string | undefined
  const poll = setInterval(() => {
    const address = publicAddress(node)
    if (address === seen) return
    say({ event: seen === undefined ? 'public' : 'public-changed', address: address ?? null, ms: performance.now() - started })
    seen = address
  }, 2)
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() !== 'stop') return
    clearInterval(poll)
    const stopping = performance.now()
    Promise.resolve(node.stop()).then(() => {
      say({ event: 'stopped', ms: performance.now() - stopping })
      process.exit(0)
    }, (err: Error) => {
      say({ event: 'error', message: err.message })
      process.exit(1)
    })
  })
}

async function pingOnce (address: string): Promise<void> {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
  try {
    const rttMs = await node.services.ping.ping(multiaddr(address), { signal: AbortSignal.timeout(10_000) })
    say({ event: 'ping', rttMs })
  } finally {
    await node.stop()
  }
}

const [mode, arg1, arg2] = process.argv.slice(2)
const run = mode === 'listen' ? listen(arg1 ?? 'natmapper', Number(arg2)) : mode === 'ping' ? pingOnce(arg1 ?? '') : Promise.reject(new Error(`unknown mode ${String(mode)}`))
run.catch((err: Error) => {
  say({ event: 'error', message: err.message })
  process.exit(1)
})
