import { UpnpErrorCode, PinholeErrorCode } from '../upnp/codes.js'
import { isIpv6Literal } from '../net/address.js'
import { atoi, type ActionResult } from './igd-mapping-actions.js'
import type { IgdState, PinholeTable, SimulatedIgdPinhole } from './igd-types.js'

/**
 * SimulatedIgd's WANIPv6FirewallControl:1 actions, as miniupnpd 2.3.1 answers them (upnpsoap.c
 * from GetFirewallStatus to GetPinholePackets, upnppinhole.c, netfilter_nft/nftpinhole.c): the
 * checks in its order, PinholeVerification's text comparison of the HTTP sender with
 * InternalClient (606), UniqueIDs from 1, the same tuple added again answered with its UniqueID.
 * One deliberate difference: that re-add gets the lease asked, where 2.3.1 passes its absolute
 * expiry time as the lease (upnp_add_inboundpinhole), so its pinhole then outlives any lease.
 */

export const PINHOLE_ACTIONS = ['GetFirewallStatus', 'GetOutboundPinholeTimeout', 'AddPinhole', 'UpdatePinhole', 'DeletePinhole', 'CheckPinholeWorking', 'GetPinholePackets'] as const

type Args = Record<string, string | undefined>
const MAX_LEASE_SECONDS = 86400
const TCP = 6
const UDP = 17

/** The reply, or the fault code; `requester` is the HTTP sender's address as the router writes it. */
export function pinholeAction (igd: IgdState, action: string, args: Args, requester: string): ActionResult {
  const table = igd.pinholes
  if (table === undefined) return UpnpErrorCode.InvalidAction
  const q = igd.quirks
  if (action === 'GetFirewallStatus') return [['FirewallEnabled', q.firewallDisabled ? '0' : '1'], ['InboundPinholeAllowed', q.inboundPinholesDisallowed ? '0' : '1']]
  if (action === 'GetOutboundPinholeTimeout') return outboundTimeout(igd, args)
  // CheckStatus: every other action is refused while the firewall is off or pinholes are not allowed.
  if (q.firewallDisabled) return PinholeErrorCode.FirewallDisabled
  if (q.inboundPinholesDisallowed) return PinholeErrorCode.InboundPinholeNotAllowed
  if (action === 'AddPinhole') return addPinhole(igd, table, args, requester)
  const uid = args.UniqueID === undefined ? -1 : atoi(args.UniqueID)
  if (uid < 0 || uid > 65535) return UpnpErrorCode.InvalidArgs
  const pinhole = table.entries.get(uid)
  switch (action) {
    case 'UpdatePinhole': {
      const lease = args.NewLeaseTime === undefined ? -1 : atoi(args.NewLeaseTime)
      if (lease <= 0 || lease > MAX_LEASE_SECONDS) return UpnpErrorCode.InvalidArgs
      if (pinhole === undefined) return q.unknownPinholeInvalidArgs ? UpnpErrorCode.InvalidArgs : PinholeErrorCode.NoSuchEntry
      const refused = verify(requester, pinhole.internalClient, pinhole.internalPort)
      if (refused !== undefined) return refused
      pinhole.leaseSeconds = lease
      pinhole.expiresAtMs = igd.nowMs + lease * 1000
      return []
    }
    case 'DeletePinhole': {
      if (pinhole === undefined) return PinholeErrorCode.NoSuchEntry
      const refused = verify(requester, pinhole.internalClient, pinhole.internalPort)
      if (refused !== undefined) return refused
      table.entries.delete(uid)
      return []
    }
    case 'CheckPinholeWorking': {
      if (pinhole === undefined) return PinholeErrorCode.NoSuchEntry
      const refused = verify(requester, pinhole.internalClient, pinhole.internalPort)
      if (refused !== undefined) return refused
      return pinhole.packets === 0 ? PinholeErrorCode.NoPacketSent : [['IsWorking', '1']]
    }
    case 'GetPinholePackets': {
      // 2.3.1 has its 704 for an unknown UniqueID under #if 0: it answers 0 packets.
      if (pinhole === undefined) return [['PinholePackets', '0']]
      const refused = verify(requester, pinhole.internalClient, pinhole.internalPort)
      return refused ?? [['PinholePackets', String(pinhole.packets)]]
    }
    default:
      return UpnpErrorCode.InvalidAction
  }
}

function outboundTimeout (igd: IgdState, args: Args): ActionResult {
  if (igd.quirks.firewallDisabled) return PinholeErrorCode.FirewallDisabled
  if (args.InternalPort === undefined || args.RemotePort === undefined || args.Protocol === undefined) return UpnpErrorCode.InvalidArgs
  const seconds = igd.quirks.outboundPinholeTimeoutSeconds
  return seconds === undefined ? UpnpErrorCode.ActionFailed : [['OutboundPinholeTimeout', String(seconds)]]
}

function addPinhole (igd: IgdState, table: PinholeTable, args: Args, requester: string): ActionResult {
  const protocol = args.Protocol === undefined ? -1 : strtol(args.Protocol)
  if (Number.isNaN(protocol) || protocol < 0 || protocol > 65535) return UpnpErrorCode.InvalidArgs
  const internalPort = atoi(args.InternalPort) & 0xffff
  if (internalPort === 0) return PinholeErrorCode.InternalPortWildcardingNotAllowed
  const internalClient = args.InternalClient ?? ''
  if (internalClient === '' || internalClient === '*') return PinholeErrorCode.WildCardNotPermittedInSrcIP
  if (protocol === 65535) return PinholeErrorCode.ProtocolWildcardingNotAllowed
  // IPPROTO_UDPLITE is tested under a misspelt macro (IPPROTO_UDPITE), so only TCP and UDP pass.
  if (protocol !== TCP && protocol !== UDP) return PinholeErrorCode.ProtocolNotSupported
  const lease = args.LeaseTime === undefined ? -1 : atoi(args.LeaseTime)
  if (lease < 1 || lease > MAX_LEASE_SECONDS) return UpnpErrorCode.InvalidArgs
  const refused = verify(requester, internalClient, internalPort)
  if (refused !== undefined) return refused
  const trimmed = (args.RemoteHost ?? '').trimStart()
  const remoteHost = trimmed === '*' ? '' : trimmed
  const remotePort = atoi(args.RemotePort) & 0xffff
  const expiresAtMs = igd.nowMs + lease * 1000
  for (const p of table.entries.values()) {
    if (p.remoteHost === remoteHost && p.remotePort === remotePort && p.internalClient === internalClient && p.internalPort === internalPort && p.protocol === protocol) {
      p.leaseSeconds = lease
      p.expiresAtMs = expiresAtMs
      return [['UniqueID', String(p.uniqueId)]]
    }
  }
  if (igd.quirks.maxPinholes !== undefined && table.entries.size >= igd.quirks.maxPinholes) return PinholeErrorCode.PinholeSpaceExhausted
  const uniqueId = takeUniqueId(table)
  const pinhole: SimulatedIgdPinhole = { uniqueId, remoteHost, remotePort, internalClient, internalPort, protocol, leaseSeconds: lease, expiresAtMs, packets: 0 }
  table.entries.set(uniqueId, pinhole)
  return [['UniqueID', String(uniqueId)]]
}

/** The next UniqueID: nftpinhole.c counts from 1 and wraps to 1 at 65535. */
export function takeUniqueId (table: PinholeTable): number {
  const uniqueId = table.nextUid
  table.nextUid = uniqueId + 1 >= 65535 ? 1 : uniqueId + 1
  return uniqueId
}

/**
 * PinholeVerification: InternalClient must be an address (402; miniupnpd would resolve a name,
 * the simulator has no DNS), the very text of the sender's address (606: 2001:DB8::1 is not
 * 2001:db8::1 to it), and a port from 1024 (606).
 */
function verify (requester: string, internalClient: string, internalPort: number): number | undefined {
  if (!isIpv6Literal(internalClient)) return UpnpErrorCode.InvalidArgs
  if (requester !== internalClient) return UpnpErrorCode.ActionNotAuthorized
  if (internalPort < 1024) return UpnpErrorCode.ActionNotAuthorized
  return undefined
}

/** C's strtol(s, NULL, 0): decimal, 0x hex or 0 octal; NaN where errno would be set (overflow). */
function strtol (s: string): number {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)?/.exec(s)
  const digits = m?.[2]
  if (digits === undefined) return 0
  const value = /^0[xX]/.test(digits) ? Number.parseInt(digits.slice(2), 16) : digits.startsWith('0') ? Number.parseInt(digits, 8) : Number(digits)
  const signed = m![1] === '-' ? -value : value
  return Math.abs(signed) > 2 ** 63 ? Number.NaN : signed
}
