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
export type { Gateway, GatewayAbilities, GatewayReset, ListenOptions, ListedMapping, ListedTable, MapRequest, MapResult, PortMapping, CallOptions, ProbeResult, ProtocolCounters, TransportProtocol, MappingMethod, AddressFamily } from './gateway.js'
export { natChannel, requestChannel, type RequestMessage, type RequestEvent } from './counters.js'
export { mapChecked } from './gateway.js'
export { NAT, type NatOptions, type NatEvents, type MappingEvent, type MappingKey, type AddMappingOptions, type LeftMapping, type NatStats, type MappingRequest, type MappingResult, type RemovalResult } from './nat/nat.js'
export { discoverNAT, type DiscoverNatOptions } from './nat/discover-nat.js'
export { discoverNATs, type DiscoverNatsOptions, type DiscoveredNats, type InterfaceNat, type InterfaceWithoutNat } from './nat/discover-nats.js'
export { discoverGateway, openGateway, type DiscoverOptions, type DiscoveredGateway, type OpenGatewayOptions } from './discover/discover.js'
export { classifyAddress, notPublicReason, type AddressClass } from './net/address-class.js'
export { NatPmpClient, type NatPmpClientOptions } from './port-control/natpmp-client.js'
export { PcpClient, type PcpClientOptions } from './port-control/pcp-client.js'
export { PortControlServer, type PortControlServerOptions } from './port-control/server.js'
// The UPnP client and its parts are in natmapper/upnp (src/upnp/index.ts): discoverNAT loads
// them only for a gateway that speaks nothing else.
export { findDefaultGateway, readRouteTable, type DefaultRoute } from './net/default-gateway.js'
export { findDefaultGateway6, type DefaultRoute6 } from './net/default-gateway6.js'
export { chooseIpv6Addresses, hostIpv6Addresses, isGlobalUnicast6, type HostIpv6Address } from './net/ipv6-addresses.js'
export { openIpv6Gateway, type Ipv6GatewayOptions } from './nat/ipv6-gateway.js'
export type { Ipv4Route } from './net/routes.js'
export { findGateway, type HostNetwork } from './net/host-network.js'
export type { InterfaceList } from './net/local-interface.js'
export { AnnouncementListener, type Announcement, type AnnouncementListenerOptions } from './port-control/announcements.js'
export { mappingToJSON, mappingFromJSON } from './mapping-json.js'
