/**
 * Many mappings on one gateway: maps --count TCP ports from --first at once, then removes them
 * all. Reports the time of each phase (performance.now()), the router requests are counted by the
 * parent between the messages, and memory: RSS sampled every 5 ms plus the process's maxRSS.
 *
 * --tool=natmapper|peer-pmp|peer-upnp --first=N --count=N --gateway=IP --client=IP --limit=ms
 * [--gateway-port=N]   natmapper only: a simulated gateway's port (the peer's NAT-PMP always uses 5351)
 */
import { command, describe, parseArgs, runTool, send } from './io.js'
import { openPeerGateway } from './peer.js'

const args = parseArgs(process.argv.slice(2))
const first = Number(args.first ?? 20000)
const count = Number(args.count ?? 1000)
const limitMs = Number(args.limit ?? 60_000)
const ports = Array.from({ length: count }, (_v, i) => first + i)

let peakRss = 0
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 5)
const memory = (): Record<string, number> => {
  const rss = process.memoryUsage.rss()
  peakRss = Math.max(peakRss, rss)
  return { rssMiB: rss / 1048576, peakRssMiB: peakRss / 1048576, maxRssMiB: process.resourceUsage().maxRSS / 1024, heapUsedMiB: process.memoryUsage().heapUsed / 1048576 }
}

async function phase (name: string, fn: () => Promise<number>): Promise<void> {
  await command()
  peakRss = 0
  const t0 = performance.now()
  let ok = 0
  let error: string | undefined
  try {
    ok = await fn()
  } catch (err) {
    error = describe(err)
  }
  send({ type: name, ms: performance.now() - t0, ok, ...(error === undefined ? {} : { error }), ...memory() })
}

async function natmapper (): Promise<void> {
  const { discoverNAT } = await import('../../src/index.js')
  const nat = await discoverNAT(args['gateway-port'] === undefined
    ? { timeout: 5000 }
    : { timeout: 5000, gateway: args.gateway!, port: Number(args['gateway-port']), methods: ['pcp'], announcements: false })
  const errors: string[] = []
  nat.on('error', (err) => { errors.push(describe(err)) })
  send({ type: 'ready', method: nat.method, ...memory() })
  await phase('mapped', async () => {
    await Promise.all(ports.map(async (port) => { await nat.addMapping('tcp', port, { signal: AbortSignal.timeout(limitMs) }).catch(() => {}) }))
    return ports.filter((p) => nat.getMapping('tcp', p) !== undefined).length
  })
  await phase('closed', async () => {
    await nat.close()
    return count
  })
  send({ type: 'errors', errors: errors.slice(0, 5), total: errors.length })
}

async function peer (kind: 'upnp' | 'pmp'): Promise<void> {
  const g = await openPeerGateway(kind, args.gateway, 5000)
  send({ type: 'ready', method: kind, ...memory() })
  const signal = AbortSignal.timeout(limitMs)
  await phase('mapped', async () => {
    const results = await Promise.allSettled(ports.map(async (port) => await g.map(port, args.client!, { protocol: 'tcp', signal })))
    return results.filter((r) => r.status === 'fulfilled').length
  })
  await phase('closed', async () => {
    await g.stop({ signal: AbortSignal.timeout(limitMs) })
    return count
  })
  send({ type: 'errors', errors: [], total: 0 })
}

await runTool(args.tool, {
  natmapper: async () => { await natmapper() },
  'peer-upnp': async () => { await peer('upnp') },
  'peer-pmp': async () => { await peer('pmp') }
})
clearInterval(sampler)
process.exit(0)
