/**
 * natmapper for js-libp2p: a drop-in for @libp2p/upnp-nat's `uPnPNAT()` that maps the node's
 * ports over PCP, NAT-PMP or UPnP IGD v1/v2, follows router reboots and external address
 * changes, and deletes its mappings when the node stops.
 *
 * Needs Node.js >= 22, as js-libp2p 3 does (it uses Promise.withResolvers); this module itself
 * loads nothing of libp2p, and `import 'natmapper'` does not load this module.
 *
 * ```ts
 * import { createLibp2p } from 'libp2p'
 * import { natmapperNat } from 'natmapper/libp2p'   // was: import { uPnPNAT } from '@libp2p/upnp-nat'
 *
 * const node = await createLibp2p({
 *   addresses: { listen: ['/ip4/0.0.0.0/tcp/4001'] },
 *   transports: [tcp()],
 *   services: { nat: natmapperNat() }                 // was: nat: uPnPNAT()
 * })
 * ```
 */
import { NatmapperNat } from './service.js'
import type { NatmapperNatComponents, NatmapperNatInit } from './types.js'

export { NatmapperNat } from './service.js'
export type { Announcement } from './announcer.js'
export type { NatmapperNatComponents, NatmapperNatInit, AddressManagerLike, Libp2pLogger, MultiaddrLike, NodeEventName } from './types.js'
export { parseListenAddress, portsToMap, type ListenPort } from './listen-ports.js'

/** The service factory for `services: { nat: natmapperNat() }`, where `uPnPNAT()` goes today. */
export function natmapperNat (init: NatmapperNatInit = {}): (components: NatmapperNatComponents) => NatmapperNat {
  return (components) => new NatmapperNat(components, init)
}
