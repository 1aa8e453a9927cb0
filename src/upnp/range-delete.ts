import { GatewayRefusedError, RemoteProtocolError } from '../errors.js'
import type { CallOptions, PortMapping } from '../gateway.js'
import { decodeDeletePortMappingRange, decodeGetSpecificPortMappingEntry, encodeDeletePortMappingRange, encodeGetSpecificPortMappingEntry } from './actions.js'
import type { ClientContext } from './client-context.js'
import { isRefused, UpnpErrorCode } from './codes.js'
import { notOursBecause } from './ownership.js'

/**
 * One DeletePortMappingRange (IGD v2 WANIPConnection:2) for a run of our mappings on contiguous
 * external ports of one protocol, instead of a DeletePortMapping each. miniupnpd 2.3.1 ignores
 * NewManage and deletes whatever the range holds, whoever made it (upnpsoap.c), so every port is
 * looked at first (GetSpecificPortMappingEntry, as deleteIfOurs does) and the range is deleted
 * only when each entry is ours or already gone. Returns false, having deleted nothing, when the
 * range cannot be used (IGD v1, a foreign or unreadable entry, a router that cannot look up or
 * faults the action): the caller then deletes port by port, which keeps others' entries.
 */
export async function deleteRangeIfOurs (ctx: ClientContext, mappings: readonly PortMapping[], options: CallOptions): Promise<boolean> {
  if (!canDeleteRange(ctx) || !isContiguousRun(mappings)) return false
  // Each request has the call's timeout to itself: 256 look-ups at miniupnpd's pace (tens of ms each with 256 rules) outlast one deadline.
  const context = (): ReturnType<ClientContext['exchange']> => ctx.exchange(options)
  const first = mappings[0]!
  for (const mapping of mappings) {
    let entry
    try {
      entry = await ctx.call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort: mapping.externalPort, protocol: mapping.protocol }), decodeGetSpecificPortMappingEntry, context())
    } catch (err) {
      if (!(err instanceof GatewayRefusedError) && !(err instanceof RemoteProtocolError)) throw err
      ctx.logger('%s external port %d: cannot look at the entry (%s); deleting port by port', mapping.protocol, mapping.externalPort, err.message)
      return false
    }
    if (entry === undefined) continue
    const why = notOursBecause(entry, { internalClient: ctx.internalClient, internalPort: mapping.internalPort })
    if (why !== undefined) {
      ctx.logger('%s external port %d: %s; deleting port by port', mapping.protocol, mapping.externalPort, why)
      return false
    }
  }
  // miniupnpd 2.3.1-2.3.3 (nftables) overflow a 128-entry array on a range holding more and crash (nftnlrdr.c get_portmappings_in_range, fixed in a1ade45; seen in the lab at 200).
  for (let i = 0; i < mappings.length; i += MAX_ENTRIES_PER_RANGE) {
    const chunk = mappings.slice(i, i + MAX_ENTRIES_PER_RANGE)
    const range = { startPort: chunk[0]!.externalPort, endPort: chunk[chunk.length - 1]!.externalPort, protocol: first.protocol }
    try {
      await ctx.call((st) => encodeDeletePortMappingRange(st, range), decodeDeletePortMappingRange, context())
    } catch (err) {
      // 730: nothing left in the range to delete.
      if (isRefused(err, UpnpErrorCode.PortMappingNotFound)) continue
      if (!(err instanceof GatewayRefusedError)) throw err
      // A v2 router without the action (401, 602): not asked again.
      if (isRefused(err, UpnpErrorCode.InvalidAction, UpnpErrorCode.OptionalActionNotImplemented)) ctx.learnt.noRangeDelete = true
      // What earlier chunks deleted is gone: deleting those port by port finds no entry, at no harm.
      ctx.logger('DeletePortMappingRange %s %d-%d refused (%s); deleting port by port', range.protocol, range.startPort, range.endPort, err.message)
      return false
    }
    ctx.logger('DeletePortMappingRange %s %d-%d: %d mappings deleted in one request', range.protocol, range.startPort, range.endPort, chunk.length)
  }
  return true
}

/** Entries one DeletePortMappingRange may cover (see the miniupnpd crash at the loop). */
export const MAX_ENTRIES_PER_RANGE = 128

/** DeletePortMappingRange is a WANIPConnection:2 action; without entry look-ups ownership cannot be checked. */
export function canDeleteRange (ctx: ClientContext): boolean {
  return ctx.service.igdVersion === 2 && ctx.service.serviceType.includes(':WANIPConnection:2') && !ctx.learnt.noRangeDelete && !ctx.learnt.noEntryLookup
}

/** Two or more mappings of one protocol on external ports that follow each other, in order. */
function isContiguousRun (mappings: readonly PortMapping[]): boolean {
  if (mappings.length < 2) return false
  return mappings.every((m, i) => i === 0 || (m.protocol === mappings[0]!.protocol && m.externalPort === mappings[i - 1]!.externalPort + 1))
}
