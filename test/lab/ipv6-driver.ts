/**
 * Runs one IPv6 pinhole step of the library inside a lab namespace and prints its result as one
 * JSON line: `node ipv6-driver.js '<command as JSON>'`. Stateless: what a later step needs (the
 * UniqueID, the PCP nonce) comes back in the result and goes into the next command. The lab
 * tests (test/lab/ipv6*.test.ts) run it with `lab.exec('lan', node, [...])`. Not a test file.
 */
import { PcpClient } from '../../src/port-control/pcp-client.js'
import type { PortMapping, TransportProtocol } from '../../src/gateway.js'
import { mapChecked } from '../../src/gateway.js'
import { PinholeClient, type Pinhole } from '../../src/upnp/pinhole.js'

type Command =
  | { op: 'pinhole-status' | 'pinhole-open' | 'pinhole-update' | 'pinhole-delete' | 'pinhole-check', controlURL: string, internalClient?: string, port?: number, protocol?: TransportProtocol, lease?: number, pinhole?: Pinhole }
  | { op: 'pcp-map' | 'pcp-renew' | 'pcp-delete', gateway: string, localAddress: string, port: number, protocol?: TransportProtocol, lifetime?: number, nonce: string, mapping?: PortMapping }

const fromHex = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)))

async function run (command: Command): Promise<unknown> {
  const started = performance.now()
  const ms = (): number => Math.round((performance.now() - started) * 10) / 10
  if (command.op.startsWith('pinhole-')) {
    const c = command as Extract<Command, { controlURL: string }>
    const client = new PinholeClient({ controlURL: c.controlURL })
    switch (c.op) {
      case 'pinhole-status': return { status: await client.firewallStatus(), ms: ms() }
      case 'pinhole-open': return { pinhole: await client.open({ internalClient: c.internalClient!, internalPort: c.port!, protocol: c.protocol ?? 'tcp', leaseTimeSeconds: c.lease ?? 600 }), ms: ms() }
      case 'pinhole-update': return { pinhole: await client.update(c.pinhole!), ms: ms() }
      case 'pinhole-delete': await client.delete(c.pinhole!); return { ms: ms() }
      case 'pinhole-check': return { working: await client.checkWorking(c.pinhole!), packets: await client.packets(c.pinhole!), ms: ms() }
    }
  }
  const c = command as Extract<Command, { gateway: string }>
  const nonce = fromHex(c.nonce)
  const client = new PcpClient({ gateway: c.gateway, localAddress: c.localAddress, randomNonce: () => nonce })
  try {
    const session = { nonce, requestedLifetimeSeconds: c.lifetime ?? 600 }
    const asMapping = (m: PortMapping): PortMapping => ({ ...m, session })
    switch (c.op) {
      case 'pcp-map': {
        const mapping = await mapChecked(client, { protocol: c.protocol ?? 'tcp', internalPort: c.port, lifetimeSeconds: c.lifetime ?? 600 })
        return { mapping: { ...mapping, session: undefined }, ms: ms() }
      }
      case 'pcp-renew': {
        const mapping = await client.renew(asMapping(c.mapping!))
        return { mapping: { ...mapping, session: undefined }, ms: ms() }
      }
      default:
        await client.unmap(asMapping(c.mapping!))
        return { ms: ms() }
    }
  } finally {
    client.close()
  }
}

run(JSON.parse(process.argv[2]!) as Command).then((result) => {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}, (err: unknown) => {
  const e = err as Error & { code?: string, resultCode?: number }
  process.stdout.write(`${JSON.stringify({ error: { name: e.name, code: e.code, resultCode: e.resultCode, message: e.message } })}\n`)
})
