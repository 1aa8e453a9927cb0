import { FirewallDisabledError, GatewayRefusedError, InboundPinholeNotAllowedError, RemoteProtocolError, UsageError } from '../errors.js'
import type { TransportProtocol } from '../gateway.js'
import { bytes16ToIp, ipToBytes16, isIpv6Literal } from '../net/address.js'
import { parseBoolean, parseUint32 } from './actions.js'
import { PinholeErrorCode } from './codes.js'
import { encodeSoapRequest, parseSoapResponse, type SoapRequest } from './soap.js'

/**
 * Typed WANIPv6FirewallControl:1 actions (UPnP IGD v2, the IPv6 firewall control service):
 * pinholes let inbound IPv6 traffic reach a host; there is no address translation, so the
 * "mapping" is the pair internal client and port. Encoders check their inputs (UsageError);
 * decoders throw FirewallDisabledError (702) and InboundPinholeNotAllowedError (703) for the
 * router's settings, GatewayRefusedError for any other fault (606 Action not authorized, 701
 * PinholeSpaceExhausted, 704 NoSuchEntry, 705 ProtocolNotSupported, 706 InternalPort wildcard),
 * RemoteProtocolError for a reply they cannot read. Arguments go in the service template's order.
 */

export const PinholeAction = {
  GetFirewallStatus: 'GetFirewallStatus',
  GetOutboundPinholeTimeout: 'GetOutboundPinholeTimeout',
  AddPinhole: 'AddPinhole',
  UpdatePinhole: 'UpdatePinhole',
  DeletePinhole: 'DeletePinhole',
  GetPinholePackets: 'GetPinholePackets',
  CheckPinholeWorking: 'CheckPinholeWorking'
} as const

/** The service template's LeaseTime range, 1 to 86400 s; miniupnpd refuses others with 402. */
export const PINHOLE_MAX_LEASE_SECONDS = 86400

/** IANA protocol numbers: the service takes numbers, not names (TCP 6, UDP 17). */
export const PinholeProtocol = { tcp: 6, udp: 17 } as const

export interface FirewallStatus {
  /** False: the router filters nothing (or will not say); no pinhole is needed or possible. */
  readonly firewallEnabled: boolean
  /** False: control points may not open pinholes. */
  readonly inboundPinholeAllowed: boolean
}

/** Which inbound traffic a pinhole lets through. */
export interface PinholeArgs {
  /** '' (the default) for any remote host. */
  remoteHost?: string
  /** 0 (the default) for any remote port. */
  remotePort?: number
  /** The host's own IPv6 address; the request must come from it (miniupnpd compares the two as text). */
  internalClient: string
  internalPort: number
  protocol: TransportProtocol
}

export function encodeGetFirewallStatus (serviceType: string): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.GetFirewallStatus, [])
}

/** Both booleans are required; a reply without them is a RemoteProtocolError. */
export function decodeGetFirewallStatus (xml: string, serviceType: string): FirewallStatus {
  const args = parse(xml, serviceType, PinholeAction.GetFirewallStatus)
  const firewallEnabled = parseBoolean(args.FirewallEnabled)
  const inboundPinholeAllowed = parseBoolean(args.InboundPinholeAllowed)
  if (firewallEnabled === undefined || inboundPinholeAllowed === undefined) {
    throw new RemoteProtocolError(`GetFirewallStatus response has no valid FirewallEnabled and InboundPinholeAllowed: ${JSON.stringify([args.FirewallEnabled, args.InboundPinholeAllowed].map((v) => v?.slice(0, 20) ?? null))}`)
  }
  return { firewallEnabled, inboundPinholeAllowed }
}

/** How long the router keeps an idle outbound flow open, for the traffic `args` describes. */
export function encodeGetOutboundPinholeTimeout (serviceType: string, args: PinholeArgs): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.GetOutboundPinholeTimeout, pinholeArgs(args))
}

/** Seconds. miniupnpd 2.3.1 always answers 501 ActionFailed here (its upnpsoap.c leaves it a TODO). */
export function decodeGetOutboundPinholeTimeout (xml: string, serviceType: string): number {
  const args = parse(xml, serviceType, PinholeAction.GetOutboundPinholeTimeout)
  const value = parseUint(args.OutboundPinholeTimeout, 0xffffffff)
  if (value === undefined) throw new RemoteProtocolError(`GetOutboundPinholeTimeout response has no valid OutboundPinholeTimeout: ${JSON.stringify(args.OutboundPinholeTimeout?.slice(0, 40) ?? null)}`)
  return value
}

export function encodeAddPinhole (serviceType: string, args: PinholeArgs & { leaseTimeSeconds: number }): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.AddPinhole, [...pinholeArgs(args), ['LeaseTime', String(checkLease(args.leaseTimeSeconds))]])
}

/** The pinhole's UniqueID (0 to 65535), which every later action names it by. */
export function decodeAddPinhole (xml: string, serviceType: string): number {
  return uniqueIdOf(parse(xml, serviceType, PinholeAction.AddPinhole), PinholeAction.AddPinhole)
}

export function encodeUpdatePinhole (serviceType: string, uniqueId: number, leaseTimeSeconds: number): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.UpdatePinhole, [['UniqueID', String(checkUniqueId(uniqueId))], ['NewLeaseTime', String(checkLease(leaseTimeSeconds))]])
}

/** No out-arguments; 704 NoSuchEntry (the pinhole expired or the router restarted) throws like any fault. */
export function decodeUpdatePinhole (xml: string, serviceType: string): void {
  parse(xml, serviceType, PinholeAction.UpdatePinhole)
}

export function encodeDeletePinhole (serviceType: string, uniqueId: number): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.DeletePinhole, [['UniqueID', String(checkUniqueId(uniqueId))]])
}

export function decodeDeletePinhole (xml: string, serviceType: string): void {
  parse(xml, serviceType, PinholeAction.DeletePinhole)
}

export function encodeGetPinholePackets (serviceType: string, uniqueId: number): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.GetPinholePackets, [['UniqueID', String(checkUniqueId(uniqueId))]])
}

/** Packets the pinhole let through. */
export function decodeGetPinholePackets (xml: string, serviceType: string): number {
  const args = parse(xml, serviceType, PinholeAction.GetPinholePackets)
  const value = parseUint(args.PinholePackets, 0xffffffff)
  if (value === undefined) throw new RemoteProtocolError(`GetPinholePackets response has no valid PinholePackets: ${JSON.stringify(args.PinholePackets?.slice(0, 40) ?? null)}`)
  return value
}

export function encodeCheckPinholeWorking (serviceType: string, uniqueId: number): SoapRequest {
  return encodeSoapRequest(serviceType, PinholeAction.CheckPinholeWorking, [['UniqueID', String(checkUniqueId(uniqueId))]])
}

/**
 * Whether traffic has passed the pinhole. 709 NoPacketSent is an answer, not a failure: false
 * (miniupnpd sends it for a pinhole nothing has used yet).
 */
export function decodeCheckPinholeWorking (xml: string, serviceType: string): boolean {
  let args: Record<string, string>
  try {
    args = parse(xml, serviceType, PinholeAction.CheckPinholeWorking)
  } catch (err) {
    if (err instanceof GatewayRefusedError && err.resultCode === PinholeErrorCode.NoPacketSent) return false
    throw err
  }
  const working = parseBoolean(args.IsWorking)
  if (working === undefined) throw new RemoteProtocolError(`CheckPinholeWorking response has no valid IsWorking: ${JSON.stringify(args.IsWorking?.slice(0, 20) ?? null)}`)
  return working
}

/**
 * An IPv6 address as the router writes its peer's address (inet_ntop: RFC 5952, lower case, no
 * zone). miniupnpd compares InternalClient with that text and answers 606 when they differ, so
 * 2001:DB8::0:1 must go out as 2001:db8::1.
 */
export function canonicalIpv6 (address: string): string {
  if (typeof address !== 'string' || !isIpv6Literal(address) || address.includes('.')) throw new UsageError(`not an IPv6 address: ${JSON.stringify(address)}`)
  return bytes16ToIp(ipToBytes16(address))
}

function parse (xml: string, serviceType: string, action: string): Record<string, string> {
  try {
    return parseSoapResponse(xml, serviceType, action)
  } catch (err) {
    if (!(err instanceof GatewayRefusedError)) throw err
    if (err.resultCode === PinholeErrorCode.FirewallDisabled) throw new FirewallDisabledError(`${action}: the router's IPv6 firewall is disabled`)
    if (err.resultCode === PinholeErrorCode.InboundPinholeNotAllowed) throw new InboundPinholeNotAllowedError(`${action}: the router does not allow inbound pinholes`)
    throw err
  }
}

function pinholeArgs (args: PinholeArgs): Array<[string, string]> {
  const remoteHost = args.remoteHost ?? ''
  if (remoteHost !== '' && !isIpv6Literal(remoteHost)) throw new UsageError(`remote host must be '' or an IPv6 address, got ${JSON.stringify(remoteHost)}`)
  const remotePort = args.remotePort ?? 0
  if (!Number.isInteger(remotePort) || remotePort < 0 || remotePort > 65535) throw new UsageError(`remote port must be an integer from 0 (any) to 65535, got ${remotePort}`)
  if (!Number.isInteger(args.internalPort) || args.internalPort < 1 || args.internalPort > 65535) throw new UsageError(`internal port must be an integer from 1 to 65535, got ${args.internalPort}`)
  const protocol = PinholeProtocol[args.protocol]
  if (protocol === undefined) throw new UsageError(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(args.protocol)}`)
  return [
    ['RemoteHost', remoteHost === '' ? '' : canonicalIpv6(remoteHost)],
    ['RemotePort', String(remotePort)],
    ['InternalClient', canonicalIpv6(args.internalClient)],
    ['InternalPort', String(args.internalPort)],
    ['Protocol', String(protocol)]
  ]
}

function checkLease (seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > PINHOLE_MAX_LEASE_SECONDS) throw new UsageError(`pinhole lease must be an integer from 1 to ${PINHOLE_MAX_LEASE_SECONDS} seconds, got ${seconds}`)
  return seconds
}

function checkUniqueId (id: number): number {
  if (!Number.isInteger(id) || id < 0 || id > 65535) throw new UsageError(`pinhole UniqueID must be an integer from 0 to 65535, got ${id}`)
  return id
}

function uniqueIdOf (args: Record<string, string>, action: string): number {
  const id = parseUint(args.UniqueID, 65535)
  if (id === undefined) throw new RemoteProtocolError(`${action} response has no valid UniqueID: ${JSON.stringify(args.UniqueID?.slice(0, 40) ?? null)}`)
  return id
}

function parseUint (text: string | undefined, max: number): number | undefined {
  const value = parseUint32(text)
  return value !== undefined && value <= max ? value : undefined
}
