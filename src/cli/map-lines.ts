import type { MappingEvent, NatStats } from '../nat/nat.js'

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

/** nat.stats() in a line for people: "pcp: 12 requests, 12 answers, 0 timeouts; 3 renewals, 0 lost". */
export function statsLine (stats: NatStats): string {
  const protocols = Object.entries(stats.protocols).map(([protocol, c]) => {
    const refusals = Object.entries(c.refusals).map(([result, n]) => `${n} ${result}`).join(', ')
    return `${protocol}: ${c.requests} requests, ${c.answers} answers, ${c.timeouts} timeouts, ${c.retransmissions} retransmissions${refusals === '' ? '' : `, refused: ${refusals}`}`
  })
  return `${[...protocols, `${stats.mapped} mapped, ${stats.renewals} renewals, ${stats.lost} lost, ${stats.recoveries} recoveries, ${stats.rediscoveries} rediscoveries`].join('; ')}`
}
