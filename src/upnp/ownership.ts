import type { PortMappingEntry } from '../errors.js'
import { isIpv4Literal } from '../net/address.js'

/**
 * Whether an entry the router holds is ours to overwrite or delete. miniupnpd overwrites an
 * entry of the same internal client without a word, whatever its internal port, on
 * AddPortMapping and on AddAnyPortMapping alike (upnpredirect.c upnp_redirect, "updating
 * existing port mapping"; AddAnyPortMapping tries the asked port first): so another program of
 * our own host, or another natmapper, loses its mapping unless the client looks first (issue 18,
 * reproduced in the lab with an `upnpc -a` entry). Any router following IGD 2.4.16 does the same.
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
  // Some routers list a name or nothing as the client (see UpnpClient #entryState); only another IPv4 address is another host.
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

function describeClient (entry: PortMappingEntry): string {
  return entry.internalClient === '' ? '(no client listed)' : entry.internalClient
}
