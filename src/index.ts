/**
 * natmapper: keep ports reachable from the internet behind a NAT router.
 *
 * ```ts
 * import { discoverNAT } from 'natmapper'
 * const nat = await discoverNAT()
 * nat.on('mapped', (m) => console.log(`${m.externalAddress}:${m.externalPort}`))
 * await nat.addMapping('tcp', 4001)
 * // ... later
 * await nat.close() // deletes every mapping it made
 * ```
 */
export * from './errors.js'
export type { Clock, TimerHandle } from './clock.js'
export { systemClock } from './clock.js'
export type { Gateway, PortMapping, MapRequest, CallOptions, TransportProtocol, MappingMethod } from './gateway.js'
export { uncertainMappingOf } from './gateway.js'
export { NAT, type NatOptions, type NatEvents, type MappingEvent, type AddMappingOptions } from './nat.js'
export { discoverNAT, discoverGateway, openGateway, type DiscoverOptions, type DiscoverNatOptions, type DiscoveredGateway, type ProbeResult, type OpenGatewayOptions } from './discover.js'
export { classifyAddress, notPublicReason, type AddressClass } from './net/address-class.js'
export { NatPmpClient, type NatPmpClientOptions } from './natpmp/client.js'
export { PcpClient, type PcpClientOptions } from './pcp/client.js'
// The UPnP client and its parts are in natmapper/upnp (src/upnp/index.ts): discoverNAT loads
// them only for a gateway that speaks nothing else.
export { findDefaultGateway, NoDefaultGatewayError, type DefaultRoute } from './net/default-gateway.js'
export { AnnouncementListener, type Announcement, type AnnouncementListenerOptions } from './net/announcements.js'
export { mappingToJSON, mappingFromJSON } from './mapping-json.js'
