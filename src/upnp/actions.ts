import { GatewayRefusedError, RemoteProtocolError, UsageError, type NoExternalAddressReason, type PortMappingEntry } from '../errors.js'
import type { TransportProtocol } from '../gateway.js'
import { UpnpErrorCode } from './codes.js'
import { encodeSoapRequest, parseSoapResponse, type SoapRequest } from './soap.js'
import { isIpv4Literal } from '../net/address.js'

/**
 * Typed WANIPConnection / WANPPPConnection actions (IGD v1 and v2) over soap.ts. Each action has
 * an encoder (inputs checked, UsageError on a bad one) and a decoder for the reply body. Every
 * decoder throws GatewayRefusedError for a UPnP fault (resultCode 725, 718, ...) and
 * RemoteProtocolError for a reply it cannot read, except where a refusal is an ordinary answer
 * (GetSpecificPortMappingEntry's 714) or routers are known to send junk (the external address).
 * Arguments go out in the order of the service description, since some routers read by position.
 */

/** The WANIPConnection / WANPPPConnection action names used here. */
export const IgdAction = {
  GetExternalIPAddress: 'GetExternalIPAddress',
  GetStatusInfo: 'GetStatusInfo',
  AddPortMapping: 'AddPortMapping',
  AddAnyPortMapping: 'AddAnyPortMapping',
  DeletePortMapping: 'DeletePortMapping',
  DeletePortMappingRange: 'DeletePortMappingRange',
  GetSpecificPortMappingEntry: 'GetSpecificPortMappingEntry',
  GetGenericPortMappingEntry: 'GetGenericPortMappingEntry'
} as const

/** IGD v2 WANIPConnection: "a value of 0 ... is interpreted as ... 604800 seconds", the maximum. */
export const IGD2_MAX_LEASE_SECONDS = 604800

/** What AddPortMapping and AddAnyPortMapping take. */
export interface PortMappingArgs {
  /** '' (the default) means any remote host; some routers support nothing else (726). */
  remoteHost?: string
  /** 1..65535. Never 0: some routers read it as "every port" (tailscale PR #8993). */
  externalPort: number
  protocol: TransportProtocol
  internalPort: number
  /** The LAN address the mapping points to, IPv4 text. */
  internalClient: string
  /** Default true. */
  enabled?: boolean
  /** Shown in the router's table. Default 'natmapper'. */
  description?: string
  /** 0 asks for a permanent lease (v1) or the maximum (v2). */
  leaseDurationSeconds: number
}

/** What DeletePortMapping and GetSpecificPortMappingEntry take: the mapping's key. */
export interface PortMappingKey {
  remoteHost?: string
  externalPort: number
  protocol: TransportProtocol
}

/**
 * GetExternalIPAddress's answer. Routers without a usable WAN address answer with an empty
 * string (miniupnpd with a reserved WAN address), 0.0.0.0 or 127.0.0.1 (tailscale corp#23538),
 * or text that is no address at all (Asus Merlin with the WAN down, miniupnp#567), so these are
 * results, not errors. Private and CGNAT addresses are `ok`: the mapping still works one NAT up.
 */
export type ExternalAddressResult =
  | { readonly ok: true, readonly address: string }
  | { readonly ok: false, readonly reason: NoExternalAddressReason, readonly text: string }

/** GetStatusInfo's answer. */
export interface StatusInfo {
  /** 'Connected', 'Disconnected', 'Connecting', ..., as sent. */
  readonly connectionStatus: string
  /** 'Connected', or 'Up' which some routers send (tailscale counts both). */
  readonly connected: boolean
  /** 'ERROR_NONE' and friends; '' when absent. */
  readonly lastConnectionError: string
  /** Undefined when absent or not a number. */
  readonly uptimeSeconds: number | undefined
}

/** GetExternalIPAddress takes no arguments. */
export function encodeGetExternalIPAddress (serviceType: string): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.GetExternalIPAddress, [])
}

/** The address, or why there is none (see ExternalAddressResult); faults throw GatewayRefusedError. */
export function decodeGetExternalIPAddress (xml: string, serviceType: string): ExternalAddressResult {
  const args = parseSoapResponse(xml, serviceType, IgdAction.GetExternalIPAddress)
  const raw = args.NewExternalIPAddress
  if (raw === undefined) return { ok: false, reason: 'missing', text: '' }
  return classifyExternalAddress(raw.trim())
}

/** The checks decodeGetExternalIPAddress applies, for addresses learnt another way. */
export function classifyExternalAddress (text: string): ExternalAddressResult {
  if (text === '') return { ok: false, reason: 'empty', text }
  if (!isIpv4Literal(text)) return { ok: false, reason: 'not-ipv4', text }
  const [a, b] = text.split('.').map(Number) as [number, number]
  if (a === 0) return { ok: false, reason: 'unspecified', text }
  if (a === 127) return { ok: false, reason: 'loopback', text }
  if (a === 169 && b === 254) return { ok: false, reason: 'link-local', text }
  if (a >= 224 && a <= 239) return { ok: false, reason: 'multicast', text }
  if (a >= 240) return { ok: false, reason: 'reserved', text }
  return { ok: true, address: text }
}

/** GetStatusInfo takes no arguments. */
export function encodeGetStatusInfo (serviceType: string): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.GetStatusInfo, [])
}

/** NewConnectionStatus is required (RemoteProtocolError without it); the other fields are lenient. */
export function decodeGetStatusInfo (xml: string, serviceType: string): StatusInfo {
  const args = parseSoapResponse(xml, serviceType, IgdAction.GetStatusInfo)
  const connectionStatus = args.NewConnectionStatus?.trim()
  if (connectionStatus === undefined) throw new RemoteProtocolError('GetStatusInfo response has no NewConnectionStatus')
  return {
    connectionStatus,
    connected: connectionStatus === 'Connected' || connectionStatus === 'Up',
    lastConnectionError: args.NewLastConnectionError?.trim() ?? '',
    uptimeSeconds: parseUint32(args.NewUptime)
  }
}

/** AddPortMapping (WANIPConnection:1 §2.4.16; same arguments in v2 and in WANPPPConnection). */
export function encodeAddPortMapping (serviceType: string, args: PortMappingArgs): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.AddPortMapping, mappingArgs(args))
}

/** Success has no out-arguments; the reply is checked to be AddPortMappingResponse. */
export function decodeAddPortMapping (xml: string, serviceType: string): void {
  parseSoapResponse(xml, serviceType, IgdAction.AddPortMapping)
}

/**
 * AddAnyPortMapping, IGD v2 only: the router may grant another external port than asked, and
 * says which in NewReservedPort.
 */
export function encodeAddAnyPortMapping (serviceType: string, args: PortMappingArgs): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.AddAnyPortMapping, mappingArgs(args))
}

/** The granted external port. A reply without a valid NewReservedPort is a RemoteProtocolError. */
export function decodeAddAnyPortMapping (xml: string, serviceType: string): number {
  const args = parseSoapResponse(xml, serviceType, IgdAction.AddAnyPortMapping)
  const port = parsePort(args.NewReservedPort)
  if (port === undefined) {
    throw new RemoteProtocolError(`AddAnyPortMapping response has no valid NewReservedPort: ${JSON.stringify(args.NewReservedPort?.slice(0, 40) ?? null)}`)
  }
  return port
}

/** DeletePortMapping: NewRemoteHost, NewExternalPort, NewProtocol. */
export function encodeDeletePortMapping (serviceType: string, key: PortMappingKey): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.DeletePortMapping, keyArgs(key))
}

/** Success has no out-arguments. 714 (no such entry) is thrown like any fault: the caller decides. */
export function decodeDeletePortMapping (xml: string, serviceType: string): void {
  parseSoapResponse(xml, serviceType, IgdAction.DeletePortMapping)
}

/**
 * DeletePortMappingRange (IGD v2 WANIPConnection:2): NewStartPort, NewEndPort, NewProtocol,
 * NewManage. NewManage 0 asks for "only the port mappings of the requesting control point", but
 * miniupnpd 2.3.1 ignores it (upnpsoap.c comments it out) and deletes every entry in the range:
 * callers check that each entry is theirs first.
 */
export function encodeDeletePortMappingRange (serviceType: string, range: { startPort: number, endPort: number, protocol: TransportProtocol }): SoapRequest {
  const startPort = checkPort(range.startPort, 'start port')
  const endPort = checkPort(range.endPort, 'end port')
  if (startPort > endPort) throw new UsageError(`start port ${startPort} is above end port ${endPort}`)
  return encodeSoapRequest(serviceType, IgdAction.DeletePortMappingRange, [
    ['NewStartPort', String(startPort)],
    ['NewEndPort', String(endPort)],
    ['NewProtocol', upnpProtocol(range.protocol)],
    ['NewManage', '0']
  ])
}

/** Success has no out-arguments; 730 (nothing in the range) is thrown like any fault. */
export function decodeDeletePortMappingRange (xml: string, serviceType: string): void {
  parseSoapResponse(xml, serviceType, IgdAction.DeletePortMappingRange)
}

/** GetSpecificPortMappingEntry: NewRemoteHost, NewExternalPort, NewProtocol; how a client verifies a mapping exists. */
export function encodeGetSpecificPortMappingEntry (serviceType: string, key: PortMappingKey): SoapRequest {
  return encodeSoapRequest(serviceType, IgdAction.GetSpecificPortMappingEntry, keyArgs(key))
}

/**
 * The entry, or undefined when the router answers 714 NoSuchEntryInArray: after an add, that is
 * how a vanished mapping shows (old DD-WRT, tailscale#18196). Other faults throw.
 */
export function decodeGetSpecificPortMappingEntry (xml: string, serviceType: string): PortMappingEntry | undefined {
  let args: Record<string, string>
  try {
    args = parseSoapResponse(xml, serviceType, IgdAction.GetSpecificPortMappingEntry)
  } catch (err) {
    if (err instanceof GatewayRefusedError && err.resultCode === UpnpErrorCode.NoSuchEntryInArray) return undefined
    throw err
  }
  const internalPort = parsePort(args.NewInternalPort)
  if (internalPort === undefined) {
    throw new RemoteProtocolError(`GetSpecificPortMappingEntry response has no valid NewInternalPort: ${JSON.stringify(args.NewInternalPort?.slice(0, 40) ?? null)}`)
  }
  return {
    internalPort,
    internalClient: args.NewInternalClient?.trim() ?? '',
    enabled: parseBoolean(args.NewEnabled),
    description: args.NewPortMappingDescription ?? '',
    leaseDurationSeconds: parseUint32(args.NewLeaseDuration)
  }
}

/** GetGenericPortMappingEntry: the entry at NewPortMappingIndex, for listing the table. */
export function encodeGetGenericPortMappingEntry (serviceType: string, index: number): SoapRequest {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff) throw new UsageError(`port mapping index must be an integer from 0 to 65535, got ${index}`)
  return encodeSoapRequest(serviceType, IgdAction.GetGenericPortMappingEntry, [['NewPortMappingIndex', String(index)]])
}

/** A GetGenericPortMappingEntry answer: an entry with its key. */
export interface GenericPortMappingEntry extends PortMappingEntry {
  readonly remoteHost: string
  readonly externalPort: number
  readonly protocol: 'tcp' | 'udp'
}

/**
 * The entry, or undefined past the end of the table: 713 SpecifiedArrayIndexInvalid as the spec
 * says, or 402 as some routers answer. Other faults throw (Sagemcom answers 713 at index 0 when
 * it does not support listing at all: miniupnp#665).
 */
export function decodeGetGenericPortMappingEntry (xml: string, serviceType: string): GenericPortMappingEntry | undefined {
  let args: Record<string, string>
  try {
    args = parseSoapResponse(xml, serviceType, IgdAction.GetGenericPortMappingEntry)
  } catch (err) {
    if (err instanceof GatewayRefusedError && (err.resultCode === UpnpErrorCode.SpecifiedArrayIndexInvalid || err.resultCode === UpnpErrorCode.InvalidArgs)) return undefined
    throw err
  }
  const externalPort = parsePort(args.NewExternalPort)
  const internalPort = parsePort(args.NewInternalPort)
  const protocol = args.NewProtocol?.trim().toLowerCase()
  if (externalPort === undefined || internalPort === undefined || (protocol !== 'tcp' && protocol !== 'udp')) {
    throw new RemoteProtocolError(`GetGenericPortMappingEntry response has no valid port or protocol: ${JSON.stringify([args.NewExternalPort, args.NewProtocol, args.NewInternalPort].map((v) => v?.slice(0, 20) ?? null))}`)
  }
  return {
    remoteHost: args.NewRemoteHost?.trim() ?? '',
    externalPort,
    protocol,
    internalPort,
    internalClient: args.NewInternalClient?.trim() ?? '',
    enabled: parseBoolean(args.NewEnabled),
    description: args.NewPortMappingDescription ?? '',
    leaseDurationSeconds: parseUint32(args.NewLeaseDuration)
  }
}

/** 'TCP' or 'UDP'. Upper case always: TP-Link ER605 refuses 'udp' (tailscale#7377, PR #7458). */
export function upnpProtocol (protocol: string): 'TCP' | 'UDP' {
  const upper = typeof protocol === 'string' ? protocol.toUpperCase() : ''
  if (upper !== 'TCP' && upper !== 'UDP') throw new UsageError(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(protocol)}`)
  return upper
}

/** WANIPConnection's argument order for AddPortMapping and AddAnyPortMapping. */
function mappingArgs (args: PortMappingArgs): Array<[string, string]> {
  const lease = args.leaseDurationSeconds
  if (!Number.isInteger(lease) || lease < 0 || lease > 0xffffffff) throw new UsageError(`lease duration must be an integer number of seconds from 0 to 2^32-1, got ${lease}`)
  if (typeof args.internalClient !== 'string' || !isIpv4Literal(args.internalClient)) {
    throw new UsageError(`internal client must be an IPv4 address, got ${JSON.stringify(args.internalClient)}`)
  }
  return [
    ...keyArgs(args),
    ['NewInternalPort', String(checkPort(args.internalPort, 'internal port'))],
    ['NewInternalClient', args.internalClient],
    ['NewEnabled', args.enabled === false ? '0' : '1'],
    ['NewPortMappingDescription', args.description ?? 'natmapper'],
    ['NewLeaseDuration', String(lease)]
  ]
}

function keyArgs (key: PortMappingKey): Array<[string, string]> {
  const remoteHost = key.remoteHost ?? ''
  if (remoteHost !== '' && !isIpv4Literal(remoteHost)) throw new UsageError(`remote host must be '' or an IPv4 address, got ${JSON.stringify(remoteHost)}`)
  return [
    ['NewRemoteHost', remoteHost],
    ['NewExternalPort', String(checkPort(key.externalPort, 'external port'))],
    ['NewProtocol', upnpProtocol(key.protocol)]
  ]
}

function checkPort (port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${what} must be an integer from 1 to 65535, got ${port}`)
  return port
}

export function parseUint32 (text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const t = text.trim()
  if (t === '' || t.length > 10) return undefined
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return undefined
  }
  const value = Number(t)
  return value <= 0xffffffff ? value : undefined
}

function parsePort (text: string | undefined): number | undefined {
  const value = parseUint32(text)
  return value !== undefined && value >= 1 && value <= 65535 ? value : undefined
}

/** UDA 1.1 §2.5 boolean: "0", "false", "no" for false and "1", "true", "yes" for true. */
export function parseBoolean (text: string | undefined): boolean | undefined {
  switch (text?.trim().toLowerCase()) {
    case '1': case 'true': case 'yes': return true
    case '0': case 'false': case 'no': return false
    default: return undefined
  }
}
