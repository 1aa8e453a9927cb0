import { NoIpv6Error, UsageError } from '../errors.js'
import type { AddressFamily } from '../gateway.js'
import type { EventEmitter } from 'node:events'
import type { NatEvents } from './types.js'

/**
 * A NAT serves one address family per gateway; the IPv6 side of a NAT is a second NAT on the
 * IPv6 gateway (NatOptions.ipv6), whose mapping events the first one passes on.
 */

/** The events of the IPv6 side that callers of the IPv4 NAT hear (they carry `family: 6`). */
export const SIDE_EVENTS = ['mapped', 'renewed', 'lost', 'unmapped', 'address-changed', 'error'] as const

/** `choice` as the families to open, `own` when unset; anything else is a UsageError. */
export function familiesOf (choice: unknown, own: AddressFamily): AddressFamily[] {
  if (choice === undefined) return [own]
  if (choice === 4 || choice === 6) return [choice]
  if (choice === 'both') return [4, 6]
  throw new UsageError(`invalid family: ${JSON.stringify(choice)} (expected 4, 6 or "both")`)
}

/** One family, for calls that answer for one mapping (getMapping). */
export function familyOf (choice: unknown, own: AddressFamily): AddressFamily {
  if (choice === 'both') throw new UsageError('family "both" names two mappings: ask for 4 or 6')
  return familiesOf(choice, own)[0]!
}

/** What a NAT needs of its other side. */
interface Side<T> { nat: T | undefined, family: AddressFamily }

/** The NAT that serves `family`: this one, the other side, or a clear error when there is none. */
export function natFor<T> (family: AddressFamily, self: T, own: AddressFamily, other: Side<T>): T {
  if (family === own) return self
  if (other.nat !== undefined && other.family === family) return other.nat
  if (family === 6) throw new NoIpv6Error('no-gateway', 'this NAT has no IPv6 gateway (NatOptions.ipv6; natmapper map --ipv6 finds one)')
  throw new UsageError('this NAT has no IPv4 gateway: it was made for IPv6 alone')
}

/** Passes the side's events on to `emit`. */
export function forwardSideEvents (side: EventEmitter<NatEvents>, emit: (event: keyof NatEvents, ...args: unknown[]) => void): void {
  for (const event of SIDE_EVENTS) (side.on as (e: string, l: (...a: unknown[]) => void) => unknown).call(side, event, (...args: unknown[]) => { emit(event, ...args) })
}
