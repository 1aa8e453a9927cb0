/**
 * The peer's router requests in steady state over a long simulated horizon, against the lab's
 * real router: the runner maps one TCP port, reports `mapped`, then lets `--hours` of virtual
 * time pass and reports `done`; the parent counts miniupnpd's log lines in between. The peer reads
 * the global timers, so it runs under node:test's mock timers (setTimeout and Date), ticked in
 * 30 s steps, with real time passing after each tick until its requests are answered.
 *
 * --tool=peer-upnp|peer-pmp --port=N --gateway=IP --client=IP --hours=H
 */
import { mock } from 'node:test'
import type { Gateway as PeerGateway } from '@achingbrain/nat-port-mapper'
import { activeNetworkHandles, settleWhile } from '../lib/settle.js'
import { command, describe, parseArgs, runTool, send } from './io.js'
import { openPeerGateway } from './peer.js'

const args = parseArgs(process.argv.slice(2))
const port = Number(args.port)
const hours = Number(args.hours ?? 24)
const horizonMs = hours * 3600_000
const TICK_MS = 30_000

async function peer (kind: 'upnp' | 'pmp'): Promise<void> {
  const gateway = await openPeerGateway(kind, args.gateway, 10_000)
  // From here on the peer's timers and Date run on virtual time; its refresh timer is set by map().
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() })
  const g = gateway as PeerGateway & { queue?: unknown[] }
  const busy = (): boolean => kind === 'pmp'
    ? (g.queue?.length ?? 0) > 0
    : activeNetworkHandles(['TCPSocketWrap', 'TCPWRAP', 'ConnectWrap', 'GetAddrInfoReqWrap', 'UDPWrap']) > 0
  await gateway.map(port, args.client!, { protocol: 'tcp', signal: AbortSignal.timeout(10_000) })
  send({ type: 'mapped', method: kind })
  await command()
  const t0 = performance.now()
  let ticks = 0
  for (let elapsed = 0; elapsed < horizonMs; elapsed += TICK_MS) {
    mock.timers.tick(TICK_MS)
    ticks++
    await settleWhile(busy)
  }
  send({ type: 'done', virtualMs: horizonMs, realMs: performance.now() - t0, ticks })
  await command()
  mock.timers.reset()
  try { await gateway.unmap(port, { signal: AbortSignal.timeout(5000) }) } catch (err) { send({ type: 'note', error: describe(err) }) }
  try { await gateway.stop({ signal: AbortSignal.timeout(5000) }) } catch {}
  send({ type: 'cleaned' })
}

await runTool(args.tool, {
  'peer-upnp': async () => { await peer('upnp') },
  'peer-pmp': async () => { await peer('pmp') }
})
process.exit(0)
