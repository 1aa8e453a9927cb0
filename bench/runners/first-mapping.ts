/**
 * Time to first mapping, in-process: discovery plus one TCP mapping, timed with performance.now()
 * from the first library call to the mapping being granted. Run inside the lab's lan namespace,
 * one fresh process per sample. After the `result` line it waits for `cleanup`, then deletes the
 * mapping with the same library and exits.
 *
 * --tool=natmapper        discoverNAT() (all protocols; it finds the gateway from the default route)
 * --tool=natmapper-upnp   discoverNAT({ methods: ['upnp'] })
 * --tool=peer-upnp        upnpNat().findGateways() → first gateway → gateway.map()
 * --tool=peer-pmp         pmpNat(gateway).map() (the peer cannot find the gateway itself)
 * --port=N --gateway=IP --client=IP
 * --warm=1   first one untimed round (discovery, mapping --port + 1000, cleanup) in this process,
 *            so the timed round shows the protocol's cost without first-call compilation
 */
import type { Gateway as PeerGateway } from '@achingbrain/nat-port-mapper'
import { distIndexUrl } from '../lib/context.js'
import { command, describe, parseArgs, runTool, send } from './io.js'

const args = parseArgs(process.argv.slice(2))
const port = Number(args.port)
const gatewayAddress = args.gateway ?? ''
const clientAddress = args.client ?? ''
const timeoutMs = Number(args.timeout ?? 10_000)
const warm = args.warm === '1'

async function natmapper (methods: Array<'pcp' | 'natpmp' | 'upnp'> | undefined): Promise<void> {
  // The published bundle, as an application gets it; its types are those of src/.
  const { discoverNAT } = await import(distIndexUrl) as typeof import('../../src/index.js')
  if (warm) {
    const nat = await discoverNAT({ timeout: timeoutMs, ...(methods === undefined ? {} : { methods }) })
    nat.on('error', () => {})
    await nat.addMapping('tcp', port + 1000)
    await nat.close()
  }
  const errors: string[] = []
  const t0 = performance.now()
  let nat
  try {
    nat = await discoverNAT({ timeout: timeoutMs, ...(methods === undefined ? {} : { methods }) })
  } catch (err) {
    send({ type: 'result', ok: false, error: describe(err), ms: performance.now() - t0 })
    await command()
    send({ type: 'cleaned', ms: 0, errors: [] })
    return
  }
  const discoveredMs = performance.now() - t0
  nat.on('error', (err) => { errors.push(describe(err)) })
  await nat.addMapping('tcp', port, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => { errors.push(describe(err)) })
  const ms = performance.now() - t0
  const mapping = nat.getMapping('tcp', port)
  send(mapping === undefined
    ? { type: 'result', ok: false, error: errors[0] ?? 'no mapping', ms }
    : { type: 'result', ok: true, ms, discoveredMs, method: nat.method, externalAddress: mapping.address, externalPort: mapping.port })
  await command()
  const c0 = performance.now()
  await nat.close()
  send({ type: 'cleaned', ms: performance.now() - c0, errors })
}

async function peerUpnp (): Promise<void> {
  const { upnpNat } = await import('@achingbrain/nat-port-mapper')
  if (warm) {
    for await (const found of upnpNat().findGateways({ signal: AbortSignal.timeout(timeoutMs) })) {
      await found.map(port + 1000, clientAddress, { protocol: 'tcp' })
      await found.unmap(port + 1000)
      await found.stop()
      break
    }
  }
  const t0 = performance.now()
  let gateway: PeerGateway | undefined
  let discoveredMs = 0
  try {
    const client = upnpNat()
    for await (const found of client.findGateways({ signal: AbortSignal.timeout(timeoutMs) })) {
      gateway = found
      break
    }
    discoveredMs = performance.now() - t0
    if (gateway === undefined) throw new Error(`no IGDv2 gateway found within ${timeoutMs} ms`)
    const mapping = await gateway.map(port, clientAddress, { protocol: 'tcp', signal: AbortSignal.timeout(timeoutMs) })
    send({ type: 'result', ok: true, ms: performance.now() - t0, discoveredMs, method: 'upnp', externalAddress: mapping.externalHost, externalPort: mapping.externalPort })
  } catch (err) {
    send({ type: 'result', ok: false, error: describe(err), ms: performance.now() - t0 })
  }
  await command()
  const c0 = performance.now()
  const errors: string[] = []
  // The peer's README: unmap, then stop (which "unmaps all mapped ports").
  try { await gateway?.unmap(port, { signal: AbortSignal.timeout(5000) }) } catch (err) { errors.push(`unmap: ${describe(err)}`) }
  try { await gateway?.stop({ signal: AbortSignal.timeout(5000) }) } catch (err) { errors.push(`stop: ${describe(err)}`) }
  send({ type: 'cleaned', ms: performance.now() - c0, errors })
}

async function peerPmp (): Promise<void> {
  const { pmpNat } = await import('@achingbrain/nat-port-mapper')
  const t0 = performance.now()
  const gateway = pmpNat(gatewayAddress)
  try {
    const mapping = await gateway.map(port, clientAddress, { protocol: 'tcp', signal: AbortSignal.timeout(timeoutMs) })
    send({ type: 'result', ok: true, ms: performance.now() - t0, method: 'natpmp', externalAddress: mapping.externalHost, externalPort: mapping.externalPort })
  } catch (err) {
    send({ type: 'result', ok: false, error: describe(err), ms: performance.now() - t0 })
  }
  await command()
  const c0 = performance.now()
  const errors: string[] = []
  try { await gateway.unmap(port, { signal: AbortSignal.timeout(5000) }) } catch (err) { errors.push(`unmap: ${describe(err)}`) }
  try { await gateway.stop({ signal: AbortSignal.timeout(5000) }) } catch (err) { errors.push(`stop: ${describe(err)}`) }
  send({ type: 'cleaned', ms: performance.now() - c0, errors })
}

await runTool(args.tool, {
  natmapper: async () => { await natmapper(undefined) },
  'natmapper-upnp': async () => { await natmapper(['upnp']) },
  'peer-upnp': async () => { await peerUpnp() },
  'peer-pmp': async () => { await peerPmp() }
})
process.exit(0)
