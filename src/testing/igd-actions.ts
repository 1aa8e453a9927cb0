import { IGD2_MAX_LEASE_SECONDS } from '../upnp/actions.js'
import { UpnpErrorCode } from '../upnp/codes.js'
import type { IgdQuirks, SimulatedIgdMapping } from './igd-types.js'

/**
 * SimulatedIgd's WANIPConnection actions over its mapping table, as miniupnpd answers them
 * (upnpsoap.c, upnpredirect.c), with the quirk switches applied. Keyed `PROTOCOL/externalPort`.
 */

export interface IgdState {
  readonly igdVersion: 1 | 2
  readonly externalAddress: string
  readonly quirks: IgdQuirks
  readonly mappings: Map<string, SimulatedIgdMapping>
  readonly nowMs: number
}

/** The reply's out-arguments, or a UPnP error code. */
export function igdAction (igd: IgdState, action: string, args: Record<string, string>, requester: string, disconnected: boolean): Array<[string, string]> | number {
  const v2 = igd.igdVersion === 2
  switch (action) {
    case 'GetExternalIPAddress':
      return [['NewExternalIPAddress', disconnected ? '' : igd.externalAddress]]
    case 'GetStatusInfo':
      return [['NewConnectionStatus', disconnected || igd.quirks.statusDisconnected ? 'Disconnected' : 'Connected'], ['NewLastConnectionError', 'ERROR_NONE'], ['NewUptime', '4242']]
    case 'AddPortMapping':
    case 'AddAnyPortMapping': {
      if (action === 'AddAnyPortMapping' && !v2) return UpnpErrorCode.InvalidAction
      const checked = checkMapping(igd, args, requester, action === 'AddAnyPortMapping')
      if (typeof checked === 'number') return checked
      if (tableFull(igd, checked.protocol, checked.externalPort)) return UpnpErrorCode.NoPortMapsAvailable
      if (action === 'AddPortMapping') {
        if (igd.quirks.conflictNext > 0) {
          igd.quirks.conflictNext--
          return UpnpErrorCode.ConflictInMappingEntry
        }
        const existing = igd.mappings.get(`${checked.protocol}/${checked.externalPort}`)
        // IGD: the same (RemoteHost, ExternalPort, Protocol, InternalClient) overwrites; another client is refused.
        if (existing !== undefined && existing.internalClient !== checked.internalClient) return UpnpErrorCode.ConflictInMappingEntry
        keep(igd, checked, args.NewLeaseDuration)
        return []
      }
      // miniupnpd's AddAnyPortMapping: the asked port, else the nearest free one, alternating below and above.
      for (let step = 0; step < 65536; step++) {
        const port = checked.externalPort + (step % 2 === 0 ? step / 2 : -(step + 1) / 2)
        if (port < (igd.quirks.lowPortsRefused ? 1024 : 1) || port > 65535) continue
        const existing = igd.mappings.get(`${checked.protocol}/${port}`)
        if (existing !== undefined && existing.internalClient !== checked.internalClient) continue
        keep(igd, { ...checked, externalPort: port }, args.NewLeaseDuration)
        return [['NewReservedPort', String(port)]]
      }
      return UpnpErrorCode.NoPortMapsAvailable
    }
    case 'DeletePortMapping': {
      const key = `${args.NewProtocol ?? ''}/${args.NewExternalPort ?? ''}`
      if (!igd.mappings.has(key)) return UpnpErrorCode.NoSuchEntryInArray
      igd.mappings.delete(key)
      return []
    }
    case 'DeletePortMappingRange': {
      // miniupnpd 2.3.1 (upnpsoap.c): NewManage ignored, every entry in the range deleted whoever made it.
      if (!v2) return UpnpErrorCode.InvalidAction
      const start = Number(args.NewStartPort)
      const end = Number(args.NewEndPort)
      if (!Number.isInteger(start) || !Number.isInteger(end) || args.NewProtocol === undefined) return UpnpErrorCode.InvalidArgs
      if (start > end) return UpnpErrorCode.InconsistentParameters
      const inRange = [...igd.mappings.entries()].filter(([, m]) => m.protocol === args.NewProtocol && m.externalPort >= start && m.externalPort <= end)
      if (inRange.length === 0) return UpnpErrorCode.PortMappingNotFound
      for (const [key] of inRange) igd.mappings.delete(key)
      return []
    }
    case 'GetSpecificPortMappingEntry': {
      const m = igd.mappings.get(`${args.NewProtocol ?? ''}/${args.NewExternalPort ?? ''}`)
      if (m === undefined) return UpnpErrorCode.NoSuchEntryInArray
      const remaining = m.leaseSeconds === 0 ? 0 : Math.max(1, Math.ceil((m.expiresAtMs - igd.nowMs) / 1000))
      return [['NewInternalPort', String(m.internalPort)], ['NewInternalClient', m.internalClient], ['NewEnabled', m.enabled ? '1' : '0'],
        ['NewPortMappingDescription', m.description], ['NewLeaseDuration', String(remaining)]]
    }
    case 'GetGenericPortMappingEntry': {
      if (igd.quirks.noListing) return UpnpErrorCode.SpecifiedArrayIndexInvalid
      const index = Number(args.NewPortMappingIndex)
      const m = [...igd.mappings.values()][index]
      if (!Number.isInteger(index) || m === undefined) return UpnpErrorCode.SpecifiedArrayIndexInvalid
      const remaining = m.leaseSeconds === 0 ? 0 : Math.max(1, Math.ceil((m.expiresAtMs - igd.nowMs) / 1000))
      return [['NewRemoteHost', ''], ['NewExternalPort', String(m.externalPort)], ['NewProtocol', m.protocol], ['NewInternalPort', String(m.internalPort)],
        ['NewInternalClient', m.internalClient], ['NewEnabled', m.enabled ? '1' : '0'], ['NewPortMappingDescription', m.description], ['NewLeaseDuration', String(remaining)]]
    }
    default:
      return UpnpErrorCode.InvalidAction
  }
}

/** A new entry would pass `maxMappings` (refreshing one of the table's does not). */
function tableFull (igd: IgdState, protocol: string, externalPort: number): boolean {
  const max = igd.quirks.maxMappings
  return max !== undefined && !igd.mappings.has(`${protocol}/${externalPort}`) && igd.mappings.size >= max
}

/** Stores an entry that was added, as the quirks have it. */
function keep (igd: IgdState, entry: SimulatedIgdMapping, requestedLease: string | undefined): void {
  if (igd.quirks.dropLeasedEntries && requestedLease !== '0') return
  const key = `${entry.protocol}/${entry.externalPort}`
  const stale = igd.quirks.staleOnOverwrite && igd.mappings.has(key)
  const stored = { ...entry, ...(igd.quirks.listExternalAsInternalPort ? { internalPort: entry.externalPort } : {}), ...(stale ? { stale } : {}) }
  igd.mappings.set(key, stored)
}

/**
 * The checks miniupnpd's upnp_redirect makes, in its order, plus the quirks. AddAnyPortMapping
 * (`any`) walks past external ports its rules refuse, and answers 728 when the rules permit none
 * for the internal port (upnpsoap.c, get_permitted_ext_ports; in the lab: ext 80 -> :8080 got
 * 1024, ext 26578 -> :80 got 728).
 */
function checkMapping (igd: IgdState, args: Record<string, string>, requester: string, any: boolean): SimulatedIgdMapping | number {
  const v2 = igd.igdVersion === 2
  const notAllowed = v2 ? UpnpErrorCode.ActionNotAuthorized : UpnpErrorCode.ConflictInMappingEntry
  const rawProtocol = args.NewProtocol ?? ''
  const protocol = rawProtocol.toUpperCase()
  if ((protocol !== 'TCP' && protocol !== 'UDP') || (igd.quirks.rejectLowerCaseProtocol && rawProtocol !== protocol)) return UpnpErrorCode.InvalidArgs
  const externalPort = Number(args.NewExternalPort)
  const internalPort = Number(args.NewInternalPort)
  const lease = Number(args.NewLeaseDuration)
  if (args.NewExternalPort === '0' || args.NewExternalPort === '') return UpnpErrorCode.WildCardNotPermittedInExtPort
  if (![externalPort, internalPort].every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) || !Number.isInteger(lease) || lease < 0) return UpnpErrorCode.InvalidArgs
  // Secure mode: a client maps to itself only; an empty NewInternalClient means the requester.
  const internalClient = args.NewInternalClient === '' || args.NewInternalClient === undefined ? requester : args.NewInternalClient
  if (internalClient !== requester) return notAllowed
  if (igd.quirks.lowPortsRefused && internalPort < 1024) return any ? UpnpErrorCode.NoPortMapsAvailable : notAllowed
  if (igd.quirks.lowPortsRefused && externalPort < 1024 && !any) return notAllowed
  if (lease !== 0 && igd.quirks.onlyPermanentLeases) return UpnpErrorCode.OnlyPermanentLeasesSupported
  if (lease !== 0 && igd.quirks.invalidArgsOnLease) return UpnpErrorCode.InvalidArgs
  // IGD v2: "a value of 0 ... the maximum value instead (e.g. 604800 seconds)".
  const leaseSeconds = v2 && (lease === 0 || lease > IGD2_MAX_LEASE_SECONDS) ? IGD2_MAX_LEASE_SECONDS : lease
  return {
    externalPort,
    protocol,
    internalClient,
    internalPort,
    description: args.NewPortMappingDescription ?? '',
    leaseSeconds,
    expiresAtMs: leaseSeconds === 0 ? Infinity : igd.nowMs + leaseSeconds * 1000,
    enabled: args.NewEnabled !== '0'
  }
}
