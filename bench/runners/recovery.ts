/**
 * Keeps one TCP mapping through a router reboot (the parent reboots it). natmapper runs through
 * discoverNAT with `--random=0` (no RFC wait) or `--random=rfc` (Math.random, each draw reported
 * as a `wait` message with the delay it gives, RESET_JITTER_MS = 5000 in src/nat.ts).
 *
 * --tool=natmapper|peer-upnp|peer-pmp --port=N --gateway=IP --client=IP [--random=0|rfc]
 */
import type { Gateway as PeerGateway } from '@achingbrain/nat-port-mapper'
import { command, describe, parseArgs, runTool, send } from './io.js'
import { openPeerGateway } from './peer.js'

const args = parseArgs(process.argv.slice(2))
const port = Number(args.port)
const RESET_JITTER_MS = 5000

async function natmapper (): Promise<void> {
  const { discoverNAT } = await import('../../src/index.js')
  const random = args.random === 'rfc'
    ? () => {
        const value = Math.random()
        send({ type: 'wait', ms: Math.floor(value * RESET_JITTER_MS) })
        return value
      }
    : () => Number(args.random ?? 0)
  let nat
  try {
    nat = await discoverNAT({ random, timeout: 5000 })
  } catch (err) {
    send({ type: 'mapped', ok: false, error: describe(err) })
    await command()
    send({ type: 'cleaned' })
    return
  }
  nat.on('error', () => {})
  await nat.addMapping('tcp', port)
  const mapping = nat.getMapping('tcp', port)
  send(mapping === undefined ? { type: 'mapped', ok: false, error: 'no mapping' } : { type: 'mapped', ok: true, method: nat.method, externalPort: mapping.port })
  await command()
  await nat.close()
  send({ type: 'cleaned' })
}

async function peer (kind: 'upnp' | 'pmp'): Promise<void> {
  let gateway: PeerGateway | undefined
  try {
    gateway = await openPeerGateway(kind, args.gateway, 5000)
    const mapping = await gateway.map(port, args.client!, { protocol: 'tcp', signal: AbortSignal.timeout(5000) })
    send({ type: 'mapped', ok: true, method: kind, externalPort: mapping.externalPort })
  } catch (err) {
    send({ type: 'mapped', ok: false, error: describe(err) })
  }
  await command()
  try { await gateway?.unmap(port, { signal: AbortSignal.timeout(2000) }) } catch {}
  try { await gateway?.stop({ signal: AbortSignal.timeout(2000) }) } catch {}
  send({ type: 'cleaned' })
}

await runTool(args.tool, {
  natmapper: async () => { await natmapper() },
  'peer-upnp': async () => { await peer('upnp') },
  'peer-pmp': async () => { await peer('pmp') }
})
process.exit(0)
