import { GatewayRefusedError } from '../errors.js'

/**
 * UPnP IGD constants and code tables: SSDP addresses (UDA 1.1 §1), the device and service types
 * an IGD publishes (IGD v1 and v2), and the SOAP error codes (UDA 1.1 §3.2.2 and the
 * WANIPConnection:1/:2 specs). The error table is lossless: a code nobody defined still prints,
 * as `UNKNOWN_<n>`, so it can be logged and reported.
 */

/** UDA 1.1 §1.1.2: the IPv4 multicast group and port of SSDP. */
export const SSDP_MULTICAST_ADDRESS = '239.255.255.250'
export const SSDP_PORT = 1900
/** The HOST header every M-SEARCH and NOTIFY carries, even when sent unicast. */
export const SSDP_HOST = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`
/** UDA 1.1 §1.1.2: SSDP's IPv6 groups, link-local (FF02::C, what miniupnpd joins) and site-local (FF05::C). */
export const SSDP_MULTICAST_ADDRESS_V6 = 'ff02::c'
export const SSDP_MULTICAST_ADDRESS_V6_SITE = 'ff05::c'

/** UDA 1.1 §1.3.2 search targets that are not a device or service type. */
export const SearchTarget = {
  ALL: 'ssdp:all',
  ROOT_DEVICE: 'upnp:rootdevice'
} as const

/** Device types of the IGD tree (IGD v1 and v2 device templates). */
export const DeviceType = {
  InternetGatewayDevice1: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  InternetGatewayDevice2: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  WANDevice1: 'urn:schemas-upnp-org:device:WANDevice:1',
  WANDevice2: 'urn:schemas-upnp-org:device:WANDevice:2',
  WANConnectionDevice1: 'urn:schemas-upnp-org:device:WANConnectionDevice:1',
  WANConnectionDevice2: 'urn:schemas-upnp-org:device:WANConnectionDevice:2'
} as const

/** Service types a port-mapping client meets, verbatim as devices publish them. */
export const ServiceType = {
  WANIPConnection1: 'urn:schemas-upnp-org:service:WANIPConnection:1',
  WANIPConnection2: 'urn:schemas-upnp-org:service:WANIPConnection:2',
  WANPPPConnection1: 'urn:schemas-upnp-org:service:WANPPPConnection:1',
  WANCommonInterfaceConfig1: 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1',
  /** Pre-standard type of the Broadband Forum's TR-064, the only one some Huawei routers publish (tailscale#10911). */
  DslForumWANIPConnection1: 'urn:dslforum-org:service:WANIPConnection:1',
  DslForumWANPPPConnection1: 'urn:dslforum-org:service:WANPPPConnection:1',
  /** IGD v2's IPv6 pinholes (WANIPv6FirewallControl:1). */
  WANIPv6FirewallControl1: 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'
} as const

/**
 * Type prefixes matched at any version, as miniupnpc does (`igd_desc_parse.c`): a router may
 * publish a version nobody standardised, such as the Orange LiveBox's WANPPPConnection:2.
 */
export const TypePrefix = {
  InternetGatewayDevice: 'urn:schemas-upnp-org:device:InternetGatewayDevice:',
  WANIPConnection: 'urn:schemas-upnp-org:service:WANIPConnection:',
  WANPPPConnection: 'urn:schemas-upnp-org:service:WANPPPConnection:',
  DslForumWANIPConnection: 'urn:dslforum-org:service:WANIPConnection:',
  DslForumWANPPPConnection: 'urn:dslforum-org:service:WANPPPConnection:',
  WANIPv6FirewallControl: 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:'
} as const

/**
 * SOAP fault codes, carried in `<UPnPError><errorCode>`. 401–606 are UDA 1.1 §3.2.2; 713–733
 * are WANIPConnection's. Per IGD v2, 724–727 are deprecated (a v2 device must not send them, a
 * control point must still understand them), and 606 does not exist in WANIPConnection:1 (a v1
 * miniupnpd answers 718 where a v2 one answers 606; miniupnp PR #677).
 */
export const UpnpErrorCode = {
  InvalidAction: 401,
  InvalidArgs: 402,
  ActionFailed: 501,
  ArgumentValueInvalid: 600,
  ArgumentValueOutOfRange: 601,
  OptionalActionNotImplemented: 602,
  OutOfMemory: 603,
  HumanInterventionRequired: 604,
  StringArgumentTooLong: 605,
  ActionNotAuthorized: 606,
  SpecifiedArrayIndexInvalid: 713,
  NoSuchEntryInArray: 714,
  WildCardNotPermittedInSrcIP: 715,
  WildCardNotPermittedInExtPort: 716,
  ConflictInMappingEntry: 718,
  SamePortValuesRequired: 724,
  OnlyPermanentLeasesSupported: 725,
  RemoteHostOnlySupportsWildcard: 726,
  ExternalPortOnlySupportsWildcard: 727,
  NoPortMapsAvailable: 728,
  ConflictWithOtherMechanisms: 729,
  PortMappingNotFound: 730,
  WildCardNotPermittedInIntPort: 732,
  InconsistentParameters: 733
} as const

/** 'InvalidAction' | 'InvalidArgs' | ... */
export type UpnpErrorName = keyof typeof UpnpErrorCode

/**
 * WANIPv6FirewallControl:1's own fault codes (§2.5 of the service template). Apart because 708
 * reuses the name of WANIPConnection's 715; miniupnpd 2.3.1 sends each of them (upnpsoap.c).
 */
export const PinholeErrorCode = {
  PinholeSpaceExhausted: 701,
  FirewallDisabled: 702,
  InboundPinholeNotAllowed: 703,
  NoSuchEntry: 704,
  ProtocolNotSupported: 705,
  InternalPortWildcardingNotAllowed: 706,
  ProtocolWildcardingNotAllowed: 707,
  WildCardNotPermittedInSrcIP: 708,
  NoPacketSent: 709
} as const

const errorNames = new Map<number, string>([...Object.entries(UpnpErrorCode), ...Object.entries(PinholeErrorCode)].map(([name, code]) => [code, name]))

/**
 * 'ConflictInMappingEntry' for 718. A code outside the table keeps its number, 'UNKNOWN_799';
 * routers do send vendor codes, negative ones included (tailscale#9551): 'UNKNOWN_-5'.
 */
export function upnpErrorName (code: number): string {
  return errorNames.get(code) ?? `UNKNOWN_${code}`
}

/** Whether `err` is the router refusing with one of `codes` (a UPnP fault, GatewayRefusedError). */
export function isRefused (err: unknown, ...codes: number[]): boolean {
  return err instanceof GatewayRefusedError && err.protocol === 'upnp' && codes.includes(err.resultCode)
}
