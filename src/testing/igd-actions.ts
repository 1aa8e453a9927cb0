import { UpnpErrorCode } from '../upnp/codes.js'
import type { IgdState } from './igd-types.js'
import {
  addAnyPortMapping, addPortMapping, deletePortMapping, deletePortMappingRange, getGenericPortMappingEntry,
  getListOfPortMappings, getSpecificPortMappingEntry, type ActionResult
} from './igd-mapping-actions.js'
import { PINHOLE_ACTIONS, pinholeAction } from './igd-pinhole-actions.js'

/**
 * SimulatedIgd's SOAP actions, as miniupnpd 2.3.1 answers them (upnpsoap.c's soapMethods):
 * WANIPConnection's (the mapping ones are igd-mapping-actions.ts), WANCommonInterfaceConfig's,
 * Layer3Forwarding's and, on IGD v2, WANIPv6FirewallControl's (igd-pinhole-actions.ts). Like miniupnpd, an action is found by its name whichever control URL
 * it was posted to; `quirks.strictServiceType` refuses one posted to another service's URL.
 */

export type { IgdState } from './igd-types.js'

/** UPnP errors the shared table has no name for: WANIPConnection:2's ReadOnly, UDA's Invalid Var. */
const READ_ONLY = 731
const INVALID_VAR = 404

/** The actions each service has; the SCPD documents list them (igd-description.ts). */
export const SERVICE_ACTIONS = {
  WANIPConnection: ['AddAnyPortMapping', 'AddPortMapping', 'DeletePortMapping', 'DeletePortMappingRange', 'ForceTermination', 'GetConnectionTypeInfo', 'GetExternalIPAddress',
    'GetGenericPortMappingEntry', 'GetListOfPortMappings', 'GetNATRSIPStatus', 'GetSpecificPortMappingEntry', 'GetStatusInfo', 'RequestConnection', 'SetConnectionType'],
  WANCommonInterfaceConfig: ['GetCommonLinkProperties', 'GetTotalBytesReceived', 'GetTotalBytesSent', 'GetTotalPacketsReceived', 'GetTotalPacketsSent'],
  Layer3Forwarding: ['GetDefaultConnectionService', 'SetDefaultConnectionService'],
  WANIPv6FirewallControl: PINHOLE_ACTIONS
} as const

/** WANIPConnection:2's own actions, which an IGD v1 (a miniupnpd built without IGD_V2) does not have. */
export const IGD2_ONLY_ACTIONS: readonly string[] = ['AddAnyPortMapping', 'DeletePortMappingRange', 'GetListOfPortMappings']

/** The reply's out-arguments, or a UPnP error code. */
export function igdAction (igd: IgdState, action: string, args: Record<string, string>, requester: string, disconnected: boolean): ActionResult {
  if (igd.igdVersion === 1 && IGD2_ONLY_ACTIONS.includes(action)) return UpnpErrorCode.InvalidAction
  if ((PINHOLE_ACTIONS as readonly string[]).includes(action)) return pinholeAction(igd, action, args, requester)
  const connected = !disconnected && !igd.quirks.statusDisconnected
  switch (action) {
    case 'GetExternalIPAddress':
      // As given: miniupnpd would send '' for 0.0.0.0 and for a reserved address; other routers send them (docs/testing.md).
      return [['NewExternalIPAddress', disconnected ? '' : igd.externalAddress]]
    case 'GetStatusInfo':
      return [['NewConnectionStatus', connected ? 'Connected' : 'Disconnected'], ['NewLastConnectionError', 'ERROR_NONE'], ['NewUptime', String(igd.uptimeSeconds)]]
    case 'GetConnectionTypeInfo':
      return [['NewConnectionType', 'IP_Routed'], ['NewPossibleConnectionTypes', 'IP_Routed']]
    case 'GetNATRSIPStatus':
      return [['NewRSIPAvailable', '0'], ['NewNATEnabled', '1']]
    case 'SetConnectionType':
      return READ_ONLY
    case 'RequestConnection':
    case 'ForceTermination':
      return UpnpErrorCode.ActionNotAuthorized
    case 'QueryStateVariable': {
      const name = args.varName
      if (name === undefined) return UpnpErrorCode.InvalidArgs
      if (name === 'ConnectionStatus') return [['return', connected ? 'Connected' : 'Disconnected']]
      if (name === 'PortMappingNumberOfEntries') return [['return', String(igd.mappings.size)]]
      return INVALID_VAR
    }
    case 'AddPortMapping':
      return addPortMapping(igd, args, requester)
    case 'AddAnyPortMapping':
      return addAnyPortMapping(igd, args, requester)
    case 'DeletePortMapping':
      return deletePortMapping(igd, args, requester)
    case 'DeletePortMappingRange':
      return deletePortMappingRange(igd, args)
    case 'GetSpecificPortMappingEntry':
      return getSpecificPortMappingEntry(igd, args)
    case 'GetGenericPortMappingEntry':
      return getGenericPortMappingEntry(igd, args)
    case 'GetListOfPortMappings':
      return getListOfPortMappings(igd, args)
    case 'GetCommonLinkProperties':
      return [['NewWANAccessType', 'Cable'], ['NewLayer1UpstreamMaxBitRate', '1000000000'], ['NewLayer1DownstreamMaxBitRate', '1000000000'],
        ['NewPhysicalLinkStatus', igd.externalAddress === '' || igd.externalAddress === '0.0.0.0' ? 'Down' : 'Up']]
    // A simulated router forwards nothing: its counters stay at 0.
    case 'GetTotalBytesSent':
    case 'GetTotalBytesReceived':
    case 'GetTotalPacketsSent':
    case 'GetTotalPacketsReceived':
      return [[`New${action.slice(3)}`, '0']]
    case 'GetDefaultConnectionService':
      return [['NewDefaultConnectionService', `${igd.wanConnectionUdn}:WANConnectionDevice:${igd.igdVersion},urn:upnp-org:serviceId:WANIPConn1`]]
    case 'SetDefaultConnectionService':
      // miniupnpd ignores the choice: it has one connection service.
      return args.NewDefaultConnectionService === undefined ? UpnpErrorCode.InvalidArgs : []
    default:
      return UpnpErrorCode.InvalidAction
  }
}
