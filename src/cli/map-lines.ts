import type { MappingEvent } from '../nat/nat.js'

/** What `map` prints of a mapping, and what it asks for; shared by its once and keep modes. */

export interface MapRequest { lifetimeSeconds: number, externalPort: number | undefined, description: string }

export function mappingFields (m: MappingEvent): Record<string, unknown> {
  return {
    protocol: m.protocol, internalPort: m.internalPort, externalAddress: m.externalAddress,
    externalPort: m.externalPort, method: m.method, lifetime: m.lifetimeSeconds
  }
}

export function mappedLine (verb: string, m: MappingEvent): string {
  return `${verb} ${m.protocol} ${m.internalPort} -> ${m.externalAddress ?? '?'}:${m.externalPort} (${m.method}, lifetime ${m.lifetimeSeconds} s)`
}
