import { RemoteProtocolError } from '../errors.js'
import type { CallOptions, ListedMapping, ListedTable } from '../gateway.js'
import { decodeGetGenericPortMappingEntry, encodeGetGenericPortMappingEntry } from './actions.js'
import type { ClientContext } from './client-context.js'

/** Entries `listTable` reads at most. */
const MAX_LISTED = 1024
/** Unreadable answers in a row after which `listTable` stops: a router that answers every index with garbage. */
const MAX_UNREADABLE_IN_A_ROW = 8

/**
 * The router's whole table, by GetGenericPortMappingEntry from index 0 until the router says
 * the index is past the end. Bounded (MAX_LISTED entries) against a router that never says so.
 * An answer that cannot be read is skipped and the next index asked: miniupnpd up to 2.3.10
 * sends a description of 64 bytes or more cut there, stack bytes after it, often mid-entity
 * (desc[64] in upnpsoap.c; see mapping-description.ts), and one such entry must not hide the
 * others. The skipped ones are listed as unreadable. After
 * MAX_UNREADABLE_IN_A_ROW in a row the listing stops; if nothing at all could be read, the
 * first error is thrown: that router's listing does not work.
 */
export async function listTable (ctx: ClientContext, options: CallOptions): Promise<ListedTable> {
  const entries: ListedMapping[] = []
  const unreadable: ListedTable['unreadable'] = []
  const context = ctx.exchange(options)
  let inARow = 0
  for (let index = 0; index < MAX_LISTED; index++) {
    let entry
    try {
      entry = await ctx.call((st) => encodeGetGenericPortMappingEntry(st, index), decodeGetGenericPortMappingEntry, context)
    } catch (err) {
      if (!(err instanceof RemoteProtocolError)) throw err
      ctx.logger('GetGenericPortMappingEntry %d: unreadable (%s); going on with the next index', index, err.message)
      unreadable.push({ index, reason: err.message })
      if (++inARow < MAX_UNREADABLE_IN_A_ROW) continue
      if (entries.length === 0) throw err
      break
    }
    inARow = 0
    if (entry === undefined) break
    entries.push({
      protocol: entry.protocol,
      externalPort: entry.externalPort,
      internalClient: entry.internalClient,
      internalPort: entry.internalPort,
      description: entry.description,
      leaseSeconds: entry.leaseDurationSeconds,
      enabled: entry.enabled
    })
  }
  return { entries, unreadable }
}
