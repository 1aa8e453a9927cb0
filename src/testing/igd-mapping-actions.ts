import { IGD2_MAX_LEASE_SECONDS } from '../upnp/actions.js'
import { UpnpErrorCode } from '../upnp/codes.js'
import { escapeXml } from '../upnp/soap.js'
import type { IgdState, SimulatedIgdMapping } from './igd-types.js'

/**
 * SimulatedIgd's port-mapping actions of WANIPConnection, as miniupnpd 2.3.1 answers them
 * (upnpsoap.c, upnpredirect.c: AddPortMapping, AddAnyPortMapping, DeletePortMapping,
 * DeletePortMappingRange, GetSpecific/GetGeneric, GetListOfPortMappings), with the quirk
 * switches applied. Numbers are read as C's atoi reads them; a protocol is UDP when it says so
 * in any case, TCP otherwise (proto_atoi); the table is keyed `PROTOCOL/externalPort` and listed
 * newest first, as miniupnpd's nftables chain is.
 */

export type ActionResult = Array<[string, string]> | number
type Args = Record<string, string | undefined>

/** C's atoi: leading blanks, a sign, digits; anything else is 0. */
export function atoi (s: string | undefined): number {
  const m = /^\s*([+-]?\d+)/.exec(s ?? '')
  return m === null ? 0 : Number.parseInt(m[1]!, 10)
}

const u16 = (s: string | undefined): number => atoi(s) & 0xffff
const isNumeric = (s: string): boolean => /^\d*$/.test(s)
/** miniupnpd's proto_atoi: "UDP" in any case, else TCP. */
export const protocolOf = (s: string): 'TCP' | 'UDP' => s.toUpperCase() === 'UDP' ? 'UDP' : 'TCP'
const keyOf = (protocol: string, port: number): string => `${protocolOf(protocol)}/${port}`
const isIpv4 = (s: string): boolean => /^(\d{1,3})(\.\d{1,3}){3}$/.test(s) && s.split('.').every((o) => Number(o) <= 255)
const newestFirst = (igd: IgdState): SimulatedIgdMapping[] => [...igd.mappings.values()].reverse()

function remaining (igd: IgdState, m: SimulatedIgdMapping): string {
  return String(m.leaseSeconds === 0 ? 0 : Math.max(0, Math.ceil((m.expiresAtMs - igd.nowMs) / 1000)))
}

/** miniupnpd's permission rule (allow 1024-65535 <lan> 1024-65535 with `lowPortsRefused`, else any port but 0). */
function permitted (igd: IgdState, externalPort: number, internalPort: number): boolean {
  const low = igd.quirks.lowPortsRefused ? 1024 : 1
  return externalPort >= low && internalPort >= low
}

type Redirect = 'ok' | 'not permitted' | 'taken' | 'full'

/**
 * upnp_redirect: the rules, then an entry of the same client and remote host overwritten, another
 * refused. miniupnpd 2.3.1's nftables rules keep no remote host (they forward from anyone, and
 * read back as ''), so an add over an entry with a NewRemoteHost is refused even for its owner.
 */
function redirect (igd: IgdState, entry: SimulatedIgdMapping, requestedLease: string | undefined, remoteHost: string): Redirect {
  if (!permitted(igd, entry.externalPort, entry.internalPort)) return 'not permitted'
  const key = keyOf(entry.protocol, entry.externalPort)
  const existing = igd.mappings.get(key)
  if (existing !== undefined && (existing.internalClient !== entry.internalClient || remoteHost !== '')) return 'taken'
  // quirks.maxMappings: no room for a new entry (728 NoPortMapsAvailable).
  if (existing === undefined && igd.quirks.maxMappings !== undefined && igd.mappings.size >= igd.quirks.maxMappings) return 'full'
  if (igd.quirks.dropLeasedEntries && requestedLease !== '0') return 'ok'
  const stale = igd.quirks.staleOnOverwrite && existing !== undefined
  igd.mappings.set(key, { ...entry, ...(igd.quirks.listExternalAsInternalPort ? { internalPort: entry.externalPort } : {}), ...(stale ? { stale } : {}) })
  return 'ok'
}

/** NewRemoteHost, with the wildcard '*' as ''. */
const remoteHostOf = (args: Args): string => args.NewRemoteHost === '*' ? '' : args.NewRemoteHost ?? ''

function entryOf (igd: IgdState, args: Args, externalPort: number, internalClient: string, leaseSeconds: number): SimulatedIgdMapping {
  return {
    externalPort,
    protocol: protocolOf(args.NewProtocol ?? ''),
    internalClient,
    internalPort: u16(args.NewInternalPort),
    description: args.NewPortMappingDescription ?? '',
    leaseSeconds,
    expiresAtMs: leaseSeconds === 0 ? Infinity : igd.nowMs + leaseSeconds * 1000,
    enabled: args.NewEnabled !== '0'
  }
}

/** The quirks that refuse an add before miniupnpd's own checks, or undefined. */
function quirkRefusal (igd: IgdState, args: Args): number | undefined {
  const raw = args.NewProtocol ?? ''
  if (igd.quirks.rejectLowerCaseProtocol && raw !== 'TCP' && raw !== 'UDP') return UpnpErrorCode.InvalidArgs
  const lease = args.NewLeaseDuration ?? '0'
  if (lease !== '0' && igd.quirks.onlyPermanentLeases) return UpnpErrorCode.OnlyPermanentLeasesSupported
  if (lease !== '0' && igd.quirks.invalidArgsOnLease) return UpnpErrorCode.InvalidArgs
  return undefined
}

export function addPortMapping (igd: IgdState, args: Args, requester: string): ActionResult {
  const v2 = igd.igdVersion === 2
  const quirk = quirkRefusal(igd, args)
  if (quirk !== undefined) return quirk
  const given = (args.NewInternalClient ?? '').replace(/^ +/, '')
  const internalClient = given === '' ? requester : given
  if (!isIpv4(internalClient)) return UpnpErrorCode.InvalidArgs
  // Secure mode: a client maps to itself only (718 here, 606 in AddAnyPortMapping: upnpsoap.c).
  if (internalClient !== requester) return UpnpErrorCode.ConflictInMappingEntry
  if (args.NewInternalPort === undefined || args.NewExternalPort === undefined || args.NewProtocol === undefined) return UpnpErrorCode.InvalidArgs
  const externalPort = u16(args.NewExternalPort)
  if (args.NewExternalPort === '*' || externalPort === 0) return UpnpErrorCode.WildCardNotPermittedInExtPort
  let lease = atoi(args.NewLeaseDuration) >>> 0
  // IGD v2: "a value of 0 ... the maximum value instead (e.g. 604800 seconds)".
  if (v2 && (lease === 0 || lease > IGD2_MAX_LEASE_SECONDS)) lease = IGD2_MAX_LEASE_SECONDS
  // 2.3.1 puts its HTTP socket's "::ffff:a.b.c.d" for an empty NewInternalClient, which no rule takes (501).
  if (given === '' && igd.quirks.emptyInternalClientFails) return UpnpErrorCode.ActionFailed
  if (igd.quirks.conflictNext > 0) {
    igd.quirks.conflictNext--
    return UpnpErrorCode.ConflictInMappingEntry
  }
  const r = redirect(igd, entryOf(igd, args, externalPort, internalClient, lease), args.NewLeaseDuration, remoteHostOf(args))
  if (r === 'ok') return []
  if (r === 'full') return UpnpErrorCode.NoPortMapsAvailable
  return r === 'not permitted' && v2 ? UpnpErrorCode.ActionNotAuthorized : UpnpErrorCode.ConflictInMappingEntry
}

export function addAnyPortMapping (igd: IgdState, args: Args, requester: string): ActionResult {
  const quirk = quirkRefusal(igd, args)
  if (quirk !== undefined) return quirk
  let lease = atoi(args.NewLeaseDuration) >>> 0
  if (lease === 0) lease = IGD2_MAX_LEASE_SECONDS
  const { NewInternalClient: client, NewExternalPort: ext, NewInternalPort: int, NewProtocol: protocol } = args
  if (client === undefined || ext === undefined || int === undefined || protocol === undefined) return UpnpErrorCode.InvalidArgs
  // A wildcard asks the router for any port: miniupnpd draws one in 1024-65535 and starts there.
  let port = ext === '*' ? 0 : u16(ext)
  if (port === 0) port = 1024 + Math.floor(Math.random() * (65536 - 1024))
  if (u16(int) === 0 || (!isNumeric(ext) && ext !== '*')) return UpnpErrorCode.InvalidArgs
  if (!isIpv4(client)) return UpnpErrorCode.InvalidArgs
  if (client !== requester) return UpnpErrorCode.ActionNotAuthorized
  const entry = entryOf(igd, args, port, client, lease)
  // The port asked, then +1, -1, +2, -2 ... over the ports the rules permit.
  let below = port
  let above = port
  for (let r = redirect(igd, entry, args.NewLeaseDuration, remoteHostOf(args)); r !== 'ok';) {
    if (r === 'full' || (below <= 1 && above === 65535)) return UpnpErrorCode.NoPortMapsAvailable
    port = above === 65535 || (port > below && below > 1) ? --below : ++above
    if (!permitted(igd, port, entry.internalPort)) continue
    r = redirect(igd, { ...entry, externalPort: port }, args.NewLeaseDuration, remoteHostOf(args))
  }
  return [['NewReservedPort', String(port)]]
}

export function deletePortMapping (igd: IgdState, args: Args, requester: string): ActionResult {
  if (args.NewExternalPort === undefined || args.NewProtocol === undefined) return UpnpErrorCode.InvalidArgs
  const port = u16(args.NewExternalPort)
  if (port === 0) return UpnpErrorCode.InvalidArgs
  const key = keyOf(args.NewProtocol, port)
  const existing = igd.mappings.get(key)
  if (existing !== undefined && existing.internalClient !== requester) return UpnpErrorCode.ActionNotAuthorized
  if (existing === undefined && igd.quirks.noSuchEntryOnDelete) return UpnpErrorCode.NoSuchEntryInArray
  igd.mappings.delete(key)
  return []
}

/** Start, end and protocol, or the fault for them. */
function range (args: Args): { start: number, end: number, protocol: 'TCP' | 'UDP' } | number {
  const { NewStartPort: start, NewEndPort: end, NewProtocol: protocol } = args
  if (start === undefined || end === undefined || protocol === undefined || !isNumeric(start) || !isNumeric(end)) return UpnpErrorCode.InvalidArgs
  if (u16(start) > u16(end)) return UpnpErrorCode.InconsistentParameters
  return { start: u16(start), end: u16(end), protocol: protocolOf(protocol) }
}

const inRange = (igd: IgdState, r: { start: number, end: number, protocol: string }): SimulatedIgdMapping[] =>
  newestFirst(igd).filter((m) => m.protocol === r.protocol && m.externalPort >= r.start && m.externalPort <= r.end)

/** DeletePortMappingRange (IGD v2): every entry in the range, whoever's it is (miniupnpd checks no owner here). */
export function deletePortMappingRange (igd: IgdState, args: Args): ActionResult {
  const r = range(args)
  if (typeof r === 'number') return r
  const found = inRange(igd, r)
  if (found.length === 0) return UpnpErrorCode.PortMappingNotFound
  for (const m of found) igd.mappings.delete(keyOf(m.protocol, m.externalPort))
  return []
}

export function getSpecificPortMappingEntry (igd: IgdState, args: Args): ActionResult {
  if (args.NewExternalPort === undefined || args.NewProtocol === undefined) return UpnpErrorCode.InvalidArgs
  const port = u16(args.NewExternalPort)
  if (port === 0) return UpnpErrorCode.InvalidArgs
  const m = igd.mappings.get(keyOf(args.NewProtocol, port))
  if (m === undefined) return UpnpErrorCode.NoSuchEntryInArray
  return [['NewInternalPort', String(m.internalPort)], ['NewInternalClient', m.internalClient], ['NewEnabled', m.enabled ? '1' : '0'],
    ['NewPortMappingDescription', m.description], ['NewLeaseDuration', remaining(igd, m)]]
}

export function getGenericPortMappingEntry (igd: IgdState, args: Args): ActionResult {
  const text = args.NewPortMappingIndex
  // strtol: no digits at all is 402; trailing text is ignored.
  if (text === undefined || !/^\s*[+-]?\d/.test(text)) return UpnpErrorCode.InvalidArgs
  if (igd.quirks.noListing) return UpnpErrorCode.SpecifiedArrayIndexInvalid
  const m = newestFirst(igd)[atoi(text)]
  if (m === undefined) return UpnpErrorCode.SpecifiedArrayIndexInvalid
  return [['NewRemoteHost', ''], ['NewExternalPort', String(m.externalPort)], ['NewProtocol', m.protocol], ['NewInternalPort', String(m.internalPort)],
    ['NewInternalClient', m.internalClient], ['NewEnabled', m.enabled ? '1' : '0'], ['NewPortMappingDescription', m.description], ['NewLeaseDuration', remaining(igd, m)]]
}

/** GetListOfPortMappings (IGD v2): NewPortListing is a PortMappingList document (igd-http.ts sends it as CDATA). */
export function getListOfPortMappings (igd: IgdState, args: Args): ActionResult {
  const count = args.NewNumberOfPorts
  if (count === undefined || !isNumeric(count)) return UpnpErrorCode.InvalidArgs
  const r = range(args)
  if (typeof r === 'number') return r
  const entries = inRange(igd, r).slice(0, atoi(count) === 0 ? 1000 : atoi(count)).map((m) =>
    '<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost>' + `<p:NewExternalPort>${m.externalPort}</p:NewExternalPort>` +
    `<p:NewProtocol>${m.protocol}</p:NewProtocol><p:NewInternalPort>${m.internalPort}</p:NewInternalPort>` +
    `<p:NewInternalClient>${m.internalClient}</p:NewInternalClient><p:NewEnabled>${m.enabled ? 1 : 0}</p:NewEnabled>` +
    `<p:NewDescription>${escapeXml(m.description)}</p:NewDescription><p:NewLeaseTime>${remaining(igd, m)}</p:NewLeaseTime></p:PortMappingEntry>`)
  return [['NewPortListing', '<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xsi:schemaLocation="urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd">' + entries.join('') + '</p:PortMappingList>']]
}
