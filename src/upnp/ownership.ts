import { EntryNotOursError, GatewayRefusedError, RemoteProtocolError, type PortMappingEntry } from '../errors.js'
import type { CallOptions, PortMapping, TransportProtocol } from '../gateway.js'
import { isIpv4Literal } from '../net/address.js'
import { decodeDeletePortMapping, decodeGetSpecificPortMappingEntry, encodeDeletePortMapping, encodeGetSpecificPortMappingEntry } from './actions.js'
import type { ClientContext } from './client-context.js'
import { isRefused, UpnpErrorCode } from './codes.js'
import type { ExchangeContext } from './control.js'

/**
 * Whether an entry the router holds is ours to overwrite or delete. miniupnpd overwrites an
 * entry of the same internal client without a word, whatever its internal port, on
 * AddPortMapping and on AddAnyPortMapping alike (upnpredirect.c upnp_redirect, "updating
 * existing port mapping"; AddAnyPortMapping tries the asked port first): so another program of
 * our own host, or another natmapper, loses its mapping unless the client looks first (issue 18,
 * reproduced in the lab with an `upnpc -a` entry). Any router following IGD 2.4.16 does the same.
 * So the client looks before an add (takenBy) and before a delete (deleteIfOurs).
 */

/** The mapping a client wants to make or delete. */
export interface WantedEntry {
  /** Our LAN address; undefined when not known yet (then only the port and description count). */
  readonly internalClient: string | undefined
  readonly internalPort: number
  /** Our description as the router keeps it (capDescription); undefined for a delete. */
  readonly description?: string | undefined
}

/** Undefined when `entry` is ours, else why not, for people. */
// Ours = same internal client (a listed name or nothing counts) and internal port, and for an add our description or none: we refresh our own (renewal, restart), never another program's.
export function notOursBecause (entry: PortMappingEntry, wanted: WantedEntry): string | undefined {
  // Some routers list a name or nothing as the client (see entryState); only another IPv4 address is another host.
  if (wanted.internalClient !== undefined && isIpv4Literal(entry.internalClient) && entry.internalClient !== wanted.internalClient) {
    return `it forwards to another host, ${entry.internalClient}:${entry.internalPort}`
  }
  if (entry.internalPort !== wanted.internalPort) {
    return `it forwards to ${describeClient(entry)}:${entry.internalPort}, not to internal port ${wanted.internalPort}`
  }
  if (wanted.description !== undefined && entry.description !== '' && entry.description !== wanted.description) {
    return `it was made by another program (description ${JSON.stringify(entry.description.slice(0, 64))}, not ${JSON.stringify(wanted.description)})`
  }
  return undefined
}

/** The look-ups of one map() call (see takenBy). */
export interface EntryLook {
  unreadableInARow: number
  /** The last look-up found the port free: a refusal of the add that follows is no conflict. */
  sawFree: boolean
}

/**
 * Before an add on `externalPort`: EntryNotOursError when the router holds an entry there that
 * is not ours, undefined when the port is free (`looking.sawFree`) or holds our own entry (the
 * add refreshes it: a restarted natmapper takes back its earlier mapping). A router that cannot
 * answer (a fault) gets the add unchecked, as before. An unreadable answer (miniupnpd up to
 * 2.3.10 with a description of 64 bytes or more: mapping-description.ts) is someone's entry;
 * two in a row are the router's look-ups that do not work, and the add goes ahead unchecked.
 */
export async function takenBy (ctx: ClientContext, protocol: TransportProtocol, externalPort: number, wanted: WantedEntry, looking: EntryLook,
  context: ExchangeContext): Promise<EntryNotOursError | undefined> {
  if (ctx.learnt.noEntryLookup) return undefined
  let entry: PortMappingEntry | undefined
  try {
    entry = await lookUp(ctx, protocol, externalPort, context)
  } catch (err) {
    if (err instanceof RemoteProtocolError && ++looking.unreadableInARow < 2) {
      return new EntryNotOursError('map', protocol, externalPort, undefined, `its entry could not be read (${err.message})`)
    }
    if (!(err instanceof GatewayRefusedError) && !(err instanceof RemoteProtocolError)) throw err
    ctx.logger('%s external port %d: cannot look at the entry (%s); adding without looking', protocol, externalPort, (err as Error).message)
    return undefined
  }
  looking.unreadableInARow = 0
  if (entry === undefined) {
    looking.sawFree = true
    return undefined
  }
  const why = notOursBecause(entry, wanted)
  return why === undefined ? undefined : new EntryNotOursError('map', protocol, externalPort, entry, why)
}

/**
 * DeletePortMapping, once GetSpecificPortMappingEntry shows the entry is ours: the same
 * internal client and internal port (notOursBecause; the description does not count here, so a
 * router that rewrites descriptions does not keep our entries for good). Another's entry is
 * left alone and EntryNotOursError thrown: the router would delete whatever holds the port. An
 * entry already gone counts as deleted (no request more); so does 714, or 730 in some v2
 * firmware, to the delete. Where the router cannot answer the look-up (a fault), it deletes as
 * before; an answer that cannot be read is EntryNotOursError (nothing says it is ours).
 */
export async function deleteIfOurs (ctx: ClientContext, mapping: PortMapping, options: CallOptions): Promise<void> {
  const context = ctx.exchange(options)
  if (!ctx.learnt.noEntryLookup) {
    let entry: PortMappingEntry | undefined | null
    try {
      entry = await lookUp(ctx, mapping.protocol, mapping.externalPort, context)
    } catch (err) {
      if (err instanceof RemoteProtocolError) throw new EntryNotOursError('delete', mapping.protocol, mapping.externalPort, undefined, `its entry could not be read (${err.message})`)
      if (!(err instanceof GatewayRefusedError)) throw err
      ctx.logger('%s external port %d: GetSpecificPortMappingEntry refused (%s); deleting without looking', mapping.protocol, mapping.externalPort, err.message)
      entry = null
    }
    if (entry === undefined) return
    const why = entry === null ? undefined : notOursBecause(entry, { internalClient: ctx.internalClient, internalPort: mapping.internalPort })
    if (why !== undefined) throw new EntryNotOursError('delete', mapping.protocol, mapping.externalPort, entry ?? undefined, why)
  }
  await deleteEntry(ctx, mapping, options)
}

/** DeletePortMapping without looking: for an entry this client has just made or read (see deleteIfOurs). */
export async function deleteEntry (ctx: ClientContext, mapping: PortMapping, options: CallOptions): Promise<void> {
  const key = { externalPort: mapping.externalPort, protocol: mapping.protocol }
  try {
    await ctx.call((st) => encodeDeletePortMapping(st, key), decodeDeletePortMapping, ctx.exchange(options))
  } catch (err) {
    if (!isRefused(err, UpnpErrorCode.NoSuchEntryInArray, UpnpErrorCode.PortMappingNotFound)) throw err
  }
}

/** What GetSpecificPortMappingEntry says about a mapping we made. */
export type EntryState = 'ok' | 'missing' | 'wrong-port' | 'wrong-client'

export async function entryState (ctx: ClientContext, mapping: PortMapping, internalClient: string | undefined, context: ExchangeContext): Promise<EntryState> {
  const entry = await ctx.call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort: mapping.externalPort, protocol: mapping.protocol }),
    decodeGetSpecificPortMappingEntry, context)
  if (entry === undefined) return 'missing'
  // Some routers list a name or nothing as the client; only another IPv4 address is another host.
  if (internalClient !== undefined && isIpv4Literal(entry.internalClient) && entry.internalClient !== internalClient) return 'wrong-client'
  return entry.internalPort === mapping.internalPort ? 'ok' : 'wrong-port'
}

/** GetSpecificPortMappingEntry, remembering a router that does not have the action (then nothing is looked up again). */
async function lookUp (ctx: ClientContext, protocol: TransportProtocol, externalPort: number, context: ExchangeContext): Promise<PortMappingEntry | undefined> {
  try {
    return await ctx.call((st) => encodeGetSpecificPortMappingEntry(st, { externalPort, protocol }), decodeGetSpecificPortMappingEntry, context)
  } catch (err) {
    if (isRefused(err, UpnpErrorCode.InvalidAction, UpnpErrorCode.OptionalActionNotImplemented)) ctx.learnt.noEntryLookup = true
    throw err
  }
}

function describeClient (entry: PortMappingEntry): string {
  return entry.internalClient === '' ? '(no client listed)' : entry.internalClient
}
