/**
 * Router requests in steady state over a long simulated horizon, against the lab's real router:
 * the runner maps one TCP port, reports `mapped`, then lets `--hours` of virtual time pass and
 * reports `done`; the parent counts miniupnpd's log lines in between. natmapper runs on a
 * SteppedClock injected through its options; the peer, which reads the global timers, runs under
 * node:test's mock timers (setTimeout and Date), ticked in 30 s steps.
 *
 * --tool=natmapper|peer-upnp|peer-pmp --port=N --gateway=IP --client=IP --hours=H
 */
import { mock } from 'node:test'
import type { Gateway as PeerGateway } from '@achingbrain/nat-port-mapper'
import { activeNetworkHandles, settleWhile, SteppedClock } from '../lib/stepped-clock.js'
import { command, describe, fatal, parseArgs, send } from './io.js'

const args = parseArgs(process.argv.slice(2))
const port = Number(args.port)
const hours = Number(args.hours ?? 24)
const horizonMs = hours * 3600_000
const TICK_MS = 30_000

async function natmapper (): Promise<void> {
  const { discoverNAT } = await import('../../src/index.js')
  const clock = new SteppedClock()
  const nat = await discoverNAT({ clock, gateway: args.gateway! })
  const events: string[] = []
  for (const e of ['renewed', 'lost', 'error'] as const) nat.on(e, () => { events.push(e) })
  await nat.addMapping('tcp', port)
  if (nat.getMapping('tcp', port) === undefined) throw new Error('the first mapping failed')
  send({ type: 'mapped', method: nat.method })
  await command()
  const t0 = performance.now()
  const fired = await clock.runFor(horizonMs, async () => { await settleWhile(() => activeNetworkHandles(['UDPWrap']) > 0) })
  send({ type: 'done', virtualMs: horizonMs, realMs: performance.now() - t0, timersFired: fired, renewals: events.filter((e) => e === 'renewed').length, lost: events.filter((e) => e === 'lost').length, errors: events.filter((e) => e === 'error').length })
  await command()
  await nat.close()
  send({ type: 'cleaned' })
}

async function peer (kind: 'upnp' | 'pmp'): Promise<void> {
  const { upnpNat, pmpNat } = await import('@achingbrain/nat-port-mapper')
  let gateway: PeerGateway | undefined
  if (kind === 'upnp') {
    for await (const found of upnpNat().findGateways({ signal: AbortSignal.timeout(10_000) })) {
      gateway = found
      break
    }
    if (gateway === undefined) throw new Error('no IGDv2 gateway found')
  } else {
    gateway = pmpNat(args.gateway!)
  }
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

try {
  switch (args.tool) {
    case 'natmapper': await natmapper(); break
    case 'peer-upnp': await peer('upnp'); break
    case 'peer-pmp': await peer('pmp'); break
    default: throw new Error(`unknown --tool=${String(args.tool)}`)
  }
} catch (err) {
  fatal(err)
}
process.exit(0)
