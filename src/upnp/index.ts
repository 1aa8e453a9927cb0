/**
 * natmapper/upnp: the UPnP IGD client and its parts, for callers that use them directly.
 * discoverNAT and discoverGateway load them by themselves when a gateway speaks only UPnP; they
 * are a separate entry point so that `import 'natmapper'` does not load them (they are most of
 * natmapper's code).
 */
export { UpnpClient, type UpnpClientOptions, type UpnpClientTuning } from './client.js'
export type { UpnpService } from './client-context.js'
export { discoverIgd, type UpnpDiscoverOptions, type IgdSelection } from './discovery.js'
export { SsdpSearch, findIgd, type SsdpTarget, type SsdpAnswer, type SsdpSearchOptions, type SearchBurst } from './ssdp.js'
export { SsdpListener, type SsdpListenerOptions, type SsdpListenerEvents, type SsdpNotification, type SsdpRestart } from './ssdp-listener.js'
// Defined in errors.ts with every other error; exported here too, where UPnP callers look.
export { ConnectionResetError, NoExternalAddressError, UnsafeUrlError, type UnsafeUrlReason } from '../errors.js'
