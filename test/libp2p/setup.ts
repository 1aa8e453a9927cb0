/**
 * A real js-libp2p node on loopback with natmapperNat() pointed at a simulated gateway, and a
 * probe service that hands the test the node's address manager. Node >= 22 only (js-libp2p 3).
 */
import type { TestContext } from 'node:test'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { natmapperNat, type NatmapperNat, type NatmapperNatInit, type AddressManagerLike } from '../../src/libp2p/index.js'

/**
 * Gives the test the components, and declares the capability '@libp2p/autonat' so that the
 * service may leave its addresses unconfirmed (as it does for AutoNAT) without running AutoNAT.
 */
function probe () {
  return (components: { addressManager: AddressManagerLike }) => ({
    components,
    [Symbol.for('@libp2p/service-capabilities')]: ['@libp2p/autonat']
  })
}

export interface TestNode {
  node: Libp2p<{ nat: NatmapperNat, probe: { components: { addressManager: AddressManagerLike } } }>
  nat: NatmapperNat
  addressManager: AddressManagerLike
  /** Every public address the service removed, as `ip:port/protocol`. */
  removed: string[]
  /** The node's ip-mapping addresses now: `{ address, verified }`. */
  mapped: () => Array<{ address: string, verified: boolean }>
}

export async function startNode (ctx: TestContext, init: NatmapperNatInit, listen = ['/ip4/127.0.0.1/tcp/0']): Promise<TestNode> {
  const node = await createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { nat: natmapperNat(init), probe: probe() }
  })
  ctx.after(async () => { await node.stop() })
  const addressManager = node.services.probe.components.addressManager
  const removed: string[] = []
  const remove = addressManager.removePublicAddressMapping.bind(addressManager)
  addressManager.removePublicAddressMapping = (internalIp, internalPort, externalIp, externalPort, protocol) => {
    removed.push(`${externalIp}:${String(externalPort)}/${String(protocol)}`)
    remove(internalIp, internalPort, externalIp, externalPort, protocol)
  }
  return {
    node,
    nat: node.services.nat,
    addressManager,
    removed,
    mapped: () => addressManager.getAddressesWithMetadata()
      .filter((a) => a.type === 'ip-mapping')
      .map((a) => ({ address: a.multiaddr.toString(), verified: a.verified }))
  }
}

/** The TCP port the node listens on (its first loopback TCP address). */
export function tcpPort (node: Libp2p): number {
  for (const ma of node.getMultiaddrs()) {
    const m = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)/.exec(ma.toString())
    if (m?.[1] !== undefined) return Number(m[1])
  }
  throw new Error(`no loopback TCP address in ${node.getMultiaddrs().join(' ')}`)
}
