import { RemoteProtocolError, UncertainMappingError } from '../errors.js'
import type { PortMapping } from '../gateway.js'
import { addMapping } from './add.js'
import type { ClientContext, Learnt } from './client-context.js'
import type { ExchangeContext } from './control.js'
import { deleteEntry, entryState, takenBy, type EntryState } from './ownership.js'
import { sessionOf } from './session.js'

/** Whether a new mapping is read back: the first add of a client, and any whose ports differ (see readBack). */
export function needsReadBack (learnt: Learnt, mapping: PortMapping): boolean {
  return !learnt.addsCheckedOut || mapping.externalPort !== mapping.internalPort
}

/**
 * Reads a new mapping back, where routers are known to lie about it. Quirk 10: an old DD-WRT
 * accepts a leased entry and drops it at once (tailscale#18196): a missing entry is added
 * again with a permanent lease. Quirk 28: Orange FunBox6 and other SoftAtHome boxes list, and
 * forward to, the external port as the internal one (tailscale#14344): such an entry is
 * deleted and the mapping made again with equal ports, where the lie is harmless. The first add
 * of each client is read back, and every add whose ports differ (the only case where the
 * second lie shows); once one has checked out, equal-port adds are trusted, so the check costs
 * one request per client, not one per mapping. A read-back that fails (no answer) keeps the
 * mapping: dropping a possibly permanent one over a failed follow-up call is how they leak
 * (quirk 11, tailscale#10602).
 */
export async function readBack (ctx: ClientContext, added: PortMapping, internalClient: string, externalAddress: string, context: ExchangeContext): Promise<PortMapping> {
  let mapping = added
  for (let round = 0; ; round++) {
    if (!needsReadBack(ctx.learnt, mapping)) return mapping
    let state: EntryState
    try {
      state = await entryState(ctx, mapping, internalClient, context)
    } catch (err) {
      ctx.logger('%s %d: could not read external port %d back (%s); keeping it', mapping.protocol, mapping.internalPort, mapping.externalPort, (err as Error).message)
      return mapping
    }
    if (state === 'ok') {
      ctx.learnt.addsCheckedOut = true
      return mapping
    }
    const session = sessionOf(mapping)
    const what = `${mapping.protocol.toUpperCase()} external port ${mapping.externalPort}`
    if (state === 'wrong-client') {
      throw new RemoteProtocolError(`the router accepted ${what} but lists it for another host`)
    }
    if (round > 0) {
      // The second way did not work either: take it away rather than leave a broken entry (a
      // router that says it has none may still hold a permanent one; 714 costs nothing).
      await deleteEntry(ctx, mapping, { signal: context.signal }).catch(() => {})
      throw new RemoteProtocolError(state === 'missing'
        ? `the router accepted ${what}, even as a permanent lease, but does not keep it (GetSpecificPortMappingEntry finds no entry)`
        : `the router forwards ${what} to another internal port than ${mapping.internalPort}, even with equal ports; the mapping was removed`)
    }
    if (state === 'missing') {
      if (session.leaseSeconds === 0 || ctx.learnt.permanentOnly) {
        await deleteEntry(ctx, mapping, { signal: context.signal }).catch(() => {})
        throw new RemoteProtocolError(`the router accepted ${what} but does not keep it (GetSpecificPortMappingEntry finds no entry)`)
      }
      ctx.logger('%s: gone at once after a leased add (old DD-WRT, tailscale#18196): adding it with a permanent lease', what)
      ctx.learnt.permanentOnly = true
      try {
        mapping = await addMapping(ctx, mapping.protocol, mapping.internalPort, mapping.externalPort, session.requestedLifetimeSeconds,
          session.description, internalClient, externalAddress, context, { exactPort: true })
      } catch (err) {
        ctx.learnt.permanentOnly = false
        throw err
      }
      continue
    }
    // wrong-port: the router forwards to the external port; equal ports make that right.
    ctx.logger('%s: the router lists internal port other than %d (SoftAtHome, tailscale#14344): removing it, mapping equal ports', what, mapping.internalPort)
    await deleteEntry(ctx, mapping, { signal: context.signal }).catch((err: Error) => { throw new UncertainMappingError(mapping, err) })
    if (mapping.internalPort < 1024) {
      throw new RemoteProtocolError(`the router forwards ${what} to another internal port than ${mapping.internalPort}, and a low external port cannot be asked for instead; the mapping was removed`)
    }
    // A first add of that port: looked at like any (ownership.ts).
    const taken = await takenBy(ctx, mapping.protocol, mapping.internalPort, { internalClient, internalPort: mapping.internalPort, description: session.description }, { unreadableInARow: 0, sawFree: false }, context)
    if (taken !== undefined) {
      throw new RemoteProtocolError(`the router forwards ${what} to another internal port than ${mapping.internalPort}, and equal ports are impossible: ${taken.message}; the mapping was removed`)
    }
    mapping = await addMapping(ctx, mapping.protocol, mapping.internalPort, mapping.internalPort, session.requestedLifetimeSeconds,
      session.description, internalClient, externalAddress, context, { exactPort: true })
  }
}
