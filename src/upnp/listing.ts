import type { ListedMapping } from '../gateway.js'

/**
 * What UpnpClient.list could not read, carried on the list it returns (as attachPendingCheck
 * carries a read-back on a mapping), so that the Gateway interface keeps its plain array. Apart
 * from client.ts so that the CLI can read it without loading the UPnP client.
 */

/** An index of the router's table whose GetGenericPortMappingEntry answer could not be read. */
export interface UnreadableEntry {
  readonly index: number
  readonly reason: string
}

// Symbol.for: the same key in every copy of this module (natmapper and natmapper/upnp bundled apart).
const UNREADABLE = Symbol.for('natmapper.unreadableEntries')

export function attachUnreadable (list: ListedMapping[], unreadable: readonly UnreadableEntry[]): ListedMapping[] {
  Object.defineProperty(list, UNREADABLE, { value: unreadable, enumerable: false })
  return list
}

/** The entries a listing skipped because the router's answer was unreadable; empty for any other list. */
export function unreadableEntriesOf (list: readonly ListedMapping[]): readonly UnreadableEntry[] {
  return (list as { [UNREADABLE]?: readonly UnreadableEntry[] })[UNREADABLE] ?? []
}
